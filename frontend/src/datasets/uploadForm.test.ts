import { describe, expect, it } from "vitest";
import { detectFormat, guessTarget, headerColumns } from "./uploadForm";

describe("detectFormat", () => {
  it("reads the format from the file name as the server does", () => {
    expect(detectFormat("iris.csv")).toBe("csv");
    expect(detectFormat("iris.CSV.gz")).toBe("csv");
    expect(detectFormat("data.tsv")).toBe("tsv");
    expect(detectFormat("arrays.npz")).toBe("npz");
    expect(detectFormat("train-images-idx3-ubyte.gz")).toBe("idx");
    expect(detectFormat("cats-and-dogs.zip")).toBe("zip");
    expect(detectFormat("notes.txt")).toBeNull();
  });
});

describe("headerColumns", () => {
  it("splits the first line, honouring quotes", () => {
    expect(headerColumns('sepal length,"petal, width",species\n5.1,3.5,setosa', ",")).toEqual(["sepal length", "petal, width", "species"]);
    expect(headerColumns("a\tb\r\n1\t2", "\t")).toEqual(["a", "b"]);
  });
});

describe("guessTarget", () => {
  it("prefers a conventional label name, else the last column", () => {
    expect(guessTarget(["label", "a", "b"])).toBe("label");
    expect(guessTarget(["a", "b", "price"])).toBe("price");
  });
});
