// The routes. Each page lives in its own area: editor/, runs/, datasets/.
import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import { AuthProvider, useAuth } from "./auth";
import { Layout } from "./Layout";
import { LoginPage } from "./LoginPage";
import { routes } from "./routes";

function RequireLogin({ children }: { children: React.ReactNode }) {
  const { user, loading } = useAuth();
  const location = useLocation();
  if (loading) return <div className="loading">Loading…</div>;
  if (!user) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return <>{children}</>;
}

export function App() {
  return (
    <AuthProvider>
      <Routes>
        <Route path="/login" element={<LoginPage />} />
        <Route element={<RequireLogin><Layout /></RequireLogin>}>
          <Route index element={<Navigate to="/projects" replace />} />
          {routes.map((route) => (
            <Route key={route.path} path={route.path} element={route.element} />
          ))}
          <Route path="*" element={<div className="card">Nothing here. <a href="/projects">Back to projects</a></div>} />
        </Route>
      </Routes>
    </AuthProvider>
  );
}
