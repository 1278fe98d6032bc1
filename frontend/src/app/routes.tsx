// Every page of the app, by area. The editor area owns projects and the canvas; the runs area owns
// training, live curves and experiments; the datasets area owns uploads and previews.
import type { ReactElement } from "react";
import { ProjectsPage } from "../editor/ProjectsPage";
import { EditorPage } from "../editor/EditorPage";
import { RunsPage } from "../runs/RunsPage";
import { RunPage } from "../runs/RunPage";
import { DatasetsPage } from "../datasets/DatasetsPage";
import { DatasetPage } from "../datasets/DatasetPage";
import { EndpointsPage } from "../endpoints/EndpointsPage";
import { EndpointPage } from "../endpoints/EndpointPage";
import { WorkersPage } from "../workers/WorkersPage";
import { AccountPage } from "../account/AccountPage";
import { SweepPage } from "../sweeps/SweepPage";
import { SweepsPage } from "../sweeps/SweepsPage";

export const routes: { path: string; element: ReactElement }[] = [
  { path: "/projects", element: <ProjectsPage /> },
  { path: "/projects/:projectId", element: <EditorPage /> },
  { path: "/projects/:projectId/runs", element: <RunsPage /> },
  { path: "/runs/:runId", element: <RunPage /> },
  { path: "/projects/:projectId/sweeps", element: <SweepsPage /> },
  { path: "/sweeps/:sweepId", element: <SweepPage /> },
  { path: "/datasets", element: <DatasetsPage /> },
  { path: "/datasets/:datasetId", element: <DatasetPage /> },
  { path: "/endpoints", element: <EndpointsPage /> },
  { path: "/endpoints/:name", element: <EndpointPage /> },
  { path: "/workers", element: <WorkersPage /> },
  { path: "/account", element: <AccountPage /> },
];
