// Where a run is published (its record's `published`: the endpoint versions made from it, newest
// first): a mark in the runs table and a note on the run page, so a reloaded page says so.
import { Fragment } from "react";
import { Link } from "react-router-dom";
import type { Run } from "../api/types";
import "./published.css";

type Published = Run["published"][number];

const label = (version: Published) => `${version.endpoint} v${version.number}`;

/** The runs table's mark beside a run's name, linking to the newest endpoint; nothing when unpublished. */
export function PublishedBadge({ run }: { run: Run }) {
  const [newest] = run.published;
  if (!newest) return null;
  return (
    <Link to={`/endpoints/${newest.endpoint}`} className="badge published-mark" data-testid={`run-published-${run.id}`}
      title={`Published as ${run.published.map(label).join(", ")}`}>
      published
    </Link>
  );
}

/** The run page's "Already published as digits v2, ..." note; nothing when unpublished. */
export function PublishedNote({ run }: { run: Run }) {
  if (!run.published.length) return null;
  return (
    <span className="published-note" data-testid="run-published">
      Already published as{" "}
      {run.published.map((version, index) => (
        <Fragment key={label(version)}>
          {index > 0 && ", "}
          <Link to={`/endpoints/${version.endpoint}`}>{label(version)}</Link>
        </Fragment>
      ))}
    </span>
  );
}
