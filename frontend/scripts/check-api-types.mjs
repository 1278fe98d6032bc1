// Fails when src/api/schema.d.ts is not what openapi-typescript makes of src/api/openapi.json
// (`make api-types` regenerates both; tests/webapp/test_openapi.py checks the document itself).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const committed = "src/api/schema.d.ts";
const folder = mkdtempSync(join(tmpdir(), "netforge-api-types-"));
try {
  const fresh = join(folder, "schema.d.ts");
  execFileSync("npx", ["--no-install", "openapi-typescript", "src/api/openapi.json", "--output", fresh], { stdio: ["ignore", "ignore", "inherit"] });
  if (readFileSync(fresh, "utf8") !== readFileSync(committed, "utf8")) {
    console.error(`${committed} is stale: it differs from the types generated from src/api/openapi.json. Run \`make api-types\` and commit both.`);
    process.exit(1);
  }
  console.log(`${committed} matches src/api/openapi.json`);
} finally {
  rmSync(folder, { recursive: true, force: true });
}
