// Who is logged in: one context for the whole app, filled from GET /api/auth/me/ (which also sets
// the CSRF cookie every later POST needs).
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import * as session from "../api/auth";
import { ApiError } from "../api/client";
import type { User } from "../api/types";

interface AuthState {
  user: User | null;
  loading: boolean;
  login(username: string, password: string): Promise<void>;
  register(username: string, password: string, email?: string): Promise<void>;
  logout(): Promise<void>;
}

const AuthContext = createContext<AuthState | null>(null);

export function AuthProvider({ children }: { children: ReactNode }) {
  const [user, setUser] = useState<User | null>(null);
  const [loading, setLoading] = useState(true);

  useEffect(() => {
    session.fetchCurrentUser()
      .then(setUser)
      .catch((error) => {
        if (!(error instanceof ApiError && (error.status === 401 || error.status === 403))) console.error(error);
        setUser(null);
      })
      .finally(() => setLoading(false));
  }, []);

  const login = useCallback(async (username: string, password: string) => {
    setUser(await session.login(username, password));
  }, []);
  const register = useCallback(async (username: string, password: string, email?: string) => {
    setUser(await session.register(username, password, email));
  }, []);
  const logout = useCallback(async () => {
    await session.logout();
    setUser(null);
  }, []);

  return <AuthContext.Provider value={{ user, loading, login, register, logout }}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthState {
  const state = useContext(AuthContext);
  if (!state) throw new Error("useAuth outside AuthProvider");
  return state;
}
