import { NavLink, Outlet } from "react-router-dom";
import { useAuth } from "./auth";

export function Layout() {
  const { user, logout } = useAuth();
  return (
    <div className="app">
      <header className="topbar">
        <NavLink to="/projects" className="brand">NetForge</NavLink>
        <nav>
          <NavLink to="/projects">Projects</NavLink>
          <NavLink to="/datasets">Datasets</NavLink>
          <NavLink to="/endpoints">Endpoints</NavLink>
          <a href="/api/docs/" target="_blank" rel="noreferrer">API</a>
        </nav>
        <div className="spacer" />
        {user && (
          <span className="user">
            {user.username}
            <button className="link" onClick={() => void logout()}>Log out</button>
          </span>
        )}
      </header>
      <main className="content">
        <Outlet />
      </main>
    </div>
  );
}
