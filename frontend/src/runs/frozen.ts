// Which nodes a fine-tuning run froze: its `freeze` option (node ids or shell-style patterns,
// comma-separated) matched against the graph's node ids as engine/finetune.py matches them: the id
// itself, the nodes inside a block of that id, or a glob (`*`, `?`, `[...]`).

function globPattern(pattern: string): RegExp {
  let source = "";
  for (let index = 0; index < pattern.length; index += 1) {
    const char = pattern[index];
    if (char === "*") source += ".*";
    else if (char === "?") source += ".";
    else if (char === "[") {
      const end = pattern.indexOf("]", index + 1);
      if (end < 0) source += "\\[";
      else {
        const body = pattern.slice(index + 1, end);
        source += `[${body.startsWith("!") ? "^" + body.slice(1) : body}]`;
        index = end;
      }
    } else source += char.replace(/[.+^${}()|\\/]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

export function freezePatterns(hyperparameters: Record<string, unknown> | undefined): string[] {
  const freeze = hyperparameters?.freeze;
  return typeof freeze === "string" ? freeze.split(",").map((entry) => entry.trim()).filter(Boolean) : [];
}

export function isFrozen(nodeId: string, patterns: string[]): boolean {
  return patterns.some((pattern) => nodeId === pattern || nodeId.startsWith(`${pattern}/`) || globPattern(pattern).test(nodeId));
}
