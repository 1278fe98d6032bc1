import { describe, expect, it } from "vitest";
import { ApiError } from "../api/client";
import { importProblem } from "./OnnxImport";

describe("importProblem", () => {
  it("lists the nodes the catalog cannot compute, with their op types", () => {
    const unsupported = [{ node: "n2", op_type: "LRN", reason: "no catalog op computes LRN" }];
    const problem = importProblem(new ApiError(400, "unsupported_onnx", "cannot be imported", { file: ["..."], unsupported }));
    expect(problem).toEqual({ message: "1 node(s) have no op in the catalog:", nodes: unsupported });
  });

  it("says why an unreadable file was refused", () => {
    const problem = importProblem(new ApiError(400, "invalid_onnx", "'x.onnx' cannot be imported: the file is not an ONNX model", { file: ["..."] }));
    expect(problem).toEqual({ message: "'x.onnx' cannot be imported: the file is not an ONNX model", nodes: [] });
  });
});
