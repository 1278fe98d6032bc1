// The account page: who is logged in, and the API tokens scripts use (Authorization: Token <key>):
// made with a name and a lifetime, the key shown once, listed by their first characters, revoked.
import { useCallback, useEffect, useState } from "react";
import { errorMessage } from "../api/client";
import { useAuth } from "../app/auth";
import { LIFETIME_CHOICES, createToken, describeExpiry, listTokens, revokeToken, type ApiToken } from "./tokens";
import "./account.css";

export function AccountPage() {
  const { user } = useAuth();
  const [tokens, setTokens] = useState<ApiToken[]>([]);
  const [name, setName] = useState("");
  const [lifetime, setLifetime] = useState<number>(90);
  const [newKey, setNewKey] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setTokens(await listTokens());
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }, []);

  useEffect(() => {
    void load();
  }, [load]);

  async function run(action: () => Promise<void>) {
    setError(null);
    try {
      await action();
      await load();
    } catch (caught) {
      setError(errorMessage(caught));
    }
  }

  const create = () =>
    run(async () => {
      const made = await createToken(name, lifetime);
      setNewKey(made.token);
      setName("");
    });

  return (
    <div className="account-page">
      <h1>Account</h1>
      {user && (
        <p className="muted">
          Logged in as <strong>{user.username}</strong>
          {user.email ? ` (${user.email})` : ""}.
        </p>
      )}
      {error && <p className="error">{error}</p>}

      <section>
        <h2>API tokens</h2>
        <p className="muted">
          Scripts send a token as <code>Authorization: Token &lt;key&gt;</code>. Only a hash of each key is kept, so a
          key is shown once; revoke a token you no longer use or may have leaked.
        </p>
        {newKey && (
          <div className="new-token">
            <p>Copy this key now: it is not stored and will not be shown again.</p>
            <code data-testid="new-api-token">{newKey}</code>{" "}
            <button type="button" onClick={() => void navigator.clipboard?.writeText(newKey)}>Copy</button>{" "}
            <button type="button" onClick={() => setNewKey(null)}>Done</button>
          </div>
        )}
        <form
          className="token-form"
          onSubmit={(event) => {
            event.preventDefault();
            void create();
          }}
        >
          <label>
            Name{" "}
            <input value={name} maxLength={100} onChange={(event) => setName(event.target.value)}
                   placeholder="what it is for (optional)" />
          </label>
          <label>
            Expires after{" "}
            <select value={lifetime} onChange={(event) => setLifetime(Number(event.target.value))}>
              {LIFETIME_CHOICES.map((days) => <option key={days} value={days}>{days} days</option>)}
            </select>
          </label>
          <button type="submit">Create token</button>
        </form>
        {tokens.length === 0 ? (
          <p className="muted">No tokens yet.</p>
        ) : (
          <table className="tokens-table">
            <thead>
              <tr><th>Name</th><th>Key</th><th>Created</th><th>Last used</th><th>Expiry</th><th /></tr>
            </thead>
            <tbody>
              {tokens.map((token) => (
                <tr key={token.id} className={token.expired ? "expired" : undefined}>
                  <td>{token.name || "—"}</td>
                  <td><code>{token.prefix}…</code></td>
                  <td>{new Date(token.created_at).toLocaleString()}</td>
                  <td>{token.last_used_at ? new Date(token.last_used_at).toLocaleString() : "never"}</td>
                  <td title={new Date(token.expires_at).toLocaleString()}>{describeExpiry(token.expires_at)}</td>
                  <td>
                    <button type="button" onClick={() => void run(() => revokeToken(token.id))}>Revoke</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
