// The session's REST calls: who is logged in, logging in and out, signing up.
import { api } from "./client";
import type { User } from "./types";

/** The logged-in user (401 or 403 without a session); also sets the CSRF cookie later POSTs need. */
export function fetchCurrentUser(): Promise<User> {
  return api<User>("/api/auth/me/");
}

export function login(username: string, password: string): Promise<User> {
  return api<User>("/api/auth/login/", { method: "POST", json: { username, password } });
}

export function register(username: string, password: string, email?: string): Promise<User> {
  return api<User>("/api/auth/register/", { method: "POST", json: { username, password, email } });
}

export async function logout(): Promise<void> {
  await api("/api/auth/logout/", { method: "POST" });
}
