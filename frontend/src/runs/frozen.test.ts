import { describe, expect, it } from "vitest";
import { freezePatterns, isFrozen } from "./frozen";

describe("frozen nodes of a fine-tuning run", () => {
  it("read the freeze option as the engine does: ids, a block's inner nodes, globs", () => {
    const patterns = freezePatterns({ freeze: " fc1, res2_* ,stem" });
    expect(patterns).toEqual(["fc1", "res2_*", "stem"]);
    expect(["fc1", "fc10", "res2_conv", "res3_conv", "stem/conv", "stem"].filter((id) => isFrozen(id, patterns)))
      .toEqual(["fc1", "res2_conv", "stem/conv", "stem"]);
    expect(isFrozen("conv.1", ["conv?1"])).toBe(true);
    expect(isFrozen("convX1", ["conv.1"])).toBe(false);
  });

  it("finds none in a run that froze nothing", () => {
    expect(freezePatterns({ epochs: 3 })).toEqual([]);
    expect(freezePatterns(undefined)).toEqual([]);
  });
});
