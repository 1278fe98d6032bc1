import { describe, expect, it } from "vitest";
import { curlExample, featureInputs, grpcurlExample, pythonExample, zeroBase64, zeroInstance } from "./examples";
import type { ModelVersion } from "./types";

const version = {
  input_schema: {
    inputs: {
      x: { shape: [null, 3], dtype: "float32", standardization: null },
      y: { shape: [null], dtype: "int64", standardization: null },
    },
    label_input: "y",
  },
} as unknown as ModelVersion;

describe("endpoint examples", () => {
  it("sends only the feature inputs, as zero instances of their row shape", () => {
    expect(featureInputs(version)).toEqual([{ name: "x", shape: [null, 3], dtype: "float32" }]);
    expect(zeroInstance([null, 2, 2])).toEqual([[0, 0], [0, 0]]);
  });

  it("builds a curl and a Python call of the predict route", () => {
    const inputs = featureInputs(version);
    const curl = curlExample("http://localhost:8000", "digits", inputs);
    expect(curl).toContain("http://localhost:8000/api/v1/endpoints/digits/predict");
    expect(curl).toMatch(/^curl -sS -X POST /);
    expect(curl).toContain(`-d '{"instances":[[0,0,0]]}'`);
    expect(pythonExample("http://h", "digits", inputs)).toContain('body = {"instances":[[0,0,0]]}');
  });

  it("builds a grpcurl call with raw zero bytes of the right length", () => {
    expect(zeroBase64(12)).toBe("AAAAAAAAAAAAAAAA");
    expect(atob(zeroBase64(5)).length).toBe(5);
    const call = grpcurlExample("localhost:50051", "digits", featureInputs(version));
    expect(call).toContain('"x":{"dtype":"float32","shape":[1,3],"content":"AAAAAAAAAAAAAAAA"}');
    expect(call).toContain("localhost:50051 netforge.serving.v1.PredictionService/Predict");
    expect(call).not.toContain("-proto");  // the server's reflection describes the service
  });
});
