import { describe, expect, it } from "vitest";
import type { Dataset } from "../api/types";
import { datasetState, formatBytes, totalBytes } from "./schema";

const dataset = (fields: Partial<Record<string, unknown>>) => ({ id: 1, schema: {}, options: {}, preview: {}, ...fields }) as unknown as Dataset;

describe("datasetState", () => {
  it("reads processing and failed, and takes anything else for ready", () => {
    expect(datasetState(dataset({ state: "processing" }))).toBe("processing");
    expect(datasetState(dataset({ state: "failed" }))).toBe("failed");
    expect(datasetState(dataset({ state: "ready" }))).toBe("ready");
    expect(datasetState(dataset({}))).toBe("ready");
  });
});

describe("formatBytes", () => {
  it("uses the server's units", () => {
    expect(formatBytes(512)).toBe("512 bytes");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(200 * 1024 * 1024)).toBe("200.0 MB");
  });
  it("adds up the datasets' sizes", () => {
    expect(totalBytes([dataset({ size_bytes: 1000 }), dataset({ size_bytes: 24 }), dataset({})])).toBe(1024);
  });
});
