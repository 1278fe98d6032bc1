/// <reference types="vitest/config" />
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { defineConfig, type Plugin } from "vite";
import react from "@vitejs/plugin-react";

// Django serves the build (frontend/dist) at the site root; `npm run dev` proxies the API to it.
const backend = process.env.NETFORGE_BACKEND ?? "http://127.0.0.1:8000";

const COMPRESSIBLE = /\.(js|mjs|css|html|svg|json|map|txt|wasm)$/;

/**
 * Writes .gz and .br beside every compressible built file: WhiteNoise serves them (with
 * Content-Encoding) to browsers that accept them, so the 1.5 MB layout bundle goes out as ~0.4 MB.
 * Compressed once at build time, at the highest levels, instead of on every request.
 */
function precompress(outDir: string): Plugin {
  const walk = (folder: string): string[] => readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
  return {
    name: "netforge-precompress",
    apply: "build",
    closeBundle() {
      for (const path of walk(outDir)) {
        if (!COMPRESSIBLE.test(path)) continue;
        const content = readFileSync(path);
        if (content.length < 1024) continue; // headers would eat the saving
        const gzip = gzipSync(content, { level: 9 });
        if (gzip.length < content.length) writeFileSync(`${path}.gz`, gzip);
        const brotli = brotliCompressSync(content, {
          params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: content.length },
        });
        if (brotli.length < content.length) writeFileSync(`${path}.br`, brotli);
      }
    },
  };
}

export default defineConfig({
  plugins: [react(), precompress("dist")],
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 2000 },
  server: {
    proxy: {
      "/api": backend,
      "/admin": backend,
      "/ws": { target: backend.replace(/^http/, "ws"), ws: true },
    },
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
