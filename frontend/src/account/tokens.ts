// The account's API tokens: REST calls and how a token's lifetime reads. Keys are shown once, when
// made; the server keeps only their SHA-256, so a lost key is revoked and replaced, never recovered.
import { api } from "../api/client";
import type { components } from "../api/schema";

export type ApiToken = components["schemas"]["ApiToken"];
export type NewApiToken = components["schemas"]["NewApiToken"];

export const LIFETIME_CHOICES = [7, 30, 90, 365] as const;

export function listTokens(): Promise<ApiToken[]> {
  return api<ApiToken[]>("/api/auth/tokens");
}

export function createToken(name: string, expiresInDays: number): Promise<NewApiToken> {
  return api<NewApiToken>("/api/auth/tokens", { method: "POST", json: { name, expires_in_days: expiresInDays } });
}

export async function revokeToken(id: number): Promise<void> {
  await api(`/api/auth/tokens/${id}`, { method: "DELETE" });
}

const DAY_MS = 24 * 3600 * 1000;

/** "expired", "expires today", "expires in 1 day", "expires in 30 days" (whole days, rounded down). */
export function describeExpiry(expiresAt: string, now: Date = new Date()): string {
  const left = new Date(expiresAt).getTime() - now.getTime();
  if (left <= 0) return "expired";
  const days = Math.floor(left / DAY_MS);
  if (days === 0) return "expires today";
  return `expires in ${days} day${days === 1 ? "" : "s"}`;
}
