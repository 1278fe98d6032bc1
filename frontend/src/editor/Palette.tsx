// The palette, generated from the catalog: special nodes, blocks, ops by category, and templates.
// Drag an item onto the canvas, or double-click it / press Enter to add it at the view's centre.
import { useMemo, useState, type DragEvent } from "react";
import type { Catalog, Template } from "../api/types";

export const DRAG_MIME = "application/netforge-node";

interface PaletteEntry {
  kind: string;
  doc: string;
}

interface PaletteProps {
  catalog: Catalog;
  onAdd(kind: string): void;
  onLoadTemplate(template: Template): void;
}

function matches(entry: PaletteEntry, query: string): boolean {
  return !query || entry.kind.toLowerCase().includes(query) || entry.doc.toLowerCase().includes(query);
}

export function Palette({ catalog, onAdd, onLoadTemplate }: PaletteProps) {
  const [query, setQuery] = useState("");
  const [collapsed, setCollapsed] = useState<Record<string, boolean>>({});
  const needle = query.trim().toLowerCase();

  const groups = useMemo(() => {
    const special: PaletteEntry[] = catalog.special_nodes.map((node) => ({ kind: node.type, doc: node.doc }));
    const result: { name: string; entries: PaletteEntry[] }[] = [{ name: "graph", entries: special }];
    const blocks = catalog.ops.filter((op) => op.block).map((op) => ({ kind: op.name, doc: op.doc }));
    if (blocks.length) result.push({ name: "blocks", entries: blocks });
    for (const category of catalog.categories) {
      result.push({
        name: category,
        entries: catalog.ops.filter((op) => op.category === category && !op.block).map((op) => ({ kind: op.name, doc: op.doc })),
      });
    }
    return result;
  }, [catalog]);

  function onDragStart(event: DragEvent, kind: string) {
    event.dataTransfer.setData(DRAG_MIME, kind);
    event.dataTransfer.setData("text/plain", kind);
    event.dataTransfer.effectAllowed = "move";
  }

  const templates = catalog.templates.filter((template) => matches({ kind: template.name, doc: String(template.description ?? template.title ?? "") }, needle));

  return (
    <aside className="nf-palette" aria-label="Palette">
      <input
        type="search"
        data-testid="palette-search"
        placeholder="Search ops…"
        aria-label="Search ops"
        value={query}
        onChange={(event) => setQuery(event.target.value)}
      />
      <div className="nf-palette-scroll">
        {groups.map((group) => {
          const entries = group.entries.filter((entry) => matches(entry, needle));
          if (!entries.length) return null;
          const closed = collapsed[group.name] && !needle;
          return (
            <section key={group.name} className="nf-palette-group">
              <button
                className="nf-palette-heading"
                aria-expanded={!closed}
                onClick={() => setCollapsed({ ...collapsed, [group.name]: !collapsed[group.name] })}
              >
                <span aria-hidden>{closed ? "▸" : "▾"}</span> {group.name} <span className="muted">{entries.length}</span>
              </button>
              {!closed && (
                <ul>
                  {entries.map((entry) => (
                    <li key={entry.kind}>
                      <div
                        className="nf-palette-item"
                        data-testid={`palette-item-${entry.kind}`}
                        draggable
                        role="button"
                        tabIndex={0}
                        aria-label={`Add ${entry.kind}`}
                        title={`${entry.doc}\nDrag onto the canvas, or double-click / Enter to add.`}
                        onDragStart={(event) => onDragStart(event, entry.kind)}
                        onDoubleClick={() => onAdd(entry.kind)}
                        onKeyDown={(event) => {
                          if (event.key === "Enter" || event.key === " ") {
                            event.preventDefault();
                            onAdd(entry.kind);
                          }
                        }}
                      >
                        <span className="nf-palette-name">{entry.kind}</span>
                        {/* Drawn from data-doc by CSS, so the button's name stays "Add <op>" and matches its text (the doc is in the title). */}
                        <span className="nf-palette-doc" aria-hidden="true" data-doc={entry.doc} />
                      </div>
                    </li>
                  ))}
                </ul>
              )}
            </section>
          );
        })}
        {templates.length > 0 && (
          <section className="nf-palette-group">
            <button
              className="nf-palette-heading"
              aria-expanded={!(collapsed.templates && !needle)}
              onClick={() => setCollapsed({ ...collapsed, templates: !collapsed.templates })}
            >
              <span aria-hidden>{collapsed.templates && !needle ? "▸" : "▾"}</span> templates <span className="muted">{templates.length}</span>
            </button>
            {!(collapsed.templates && !needle) && (
              <ul>
                {templates.map((template) => (
                  <li key={template.name}>
                    <button className="nf-palette-template" onClick={() => onLoadTemplate(template)} title={String(template.description ?? "")}
                      aria-label={`Load template ${String(template.title ?? template.name)}`}>
                      <span className="nf-palette-name">{String(template.title ?? template.name)}</span>
                      <span className="nf-palette-doc">{String(template.description ?? "")}</span>
                    </button>
                  </li>
                ))}
              </ul>
            )}
          </section>
        )}
      </div>
    </aside>
  );
}
