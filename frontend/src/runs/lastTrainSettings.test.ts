import { describe, expect, it } from "vitest";
import { rememberTrainForm, settingsKey, withRememberedSettings } from "./lastTrainSettings";
import type { TrainForm } from "./trainConfig";

class MemoryStorage implements Storage {
  private items = new Map<string, string>();
  get length() { return this.items.size; }
  clear() { this.items.clear(); }
  getItem(key: string) { return this.items.get(key) ?? null; }
  key(index: number) { return [...this.items.keys()][index] ?? null; }
  removeItem(key: string) { this.items.delete(key); }
  setItem(key: string, value: string) { this.items.set(key, value); }
}

const fresh = (): TrainForm => ({
  dataset: "7", options: { epochs: "10", batch_size: "32", shuffle: true }, optimizer: "adam", learningRate: "0.001",
  learningRateEdited: false, optimizerOptions: {}, schedule: "constant", scheduleOptions: {}, then: "constant",
  thenOptions: {}, earlyStopping: false, stopping: { monitor: "val_loss", patience: "5" }, name: "", tags: "",
});

describe("the train panel's remembered settings", () => {
  it("come back per project, the run's name left out", () => {
    const storage = new MemoryStorage();
    const used = { ...fresh(), dataset: "3", options: { epochs: "4", batch_size: "8", shuffle: false }, optimizer: "sgd",
      learningRate: "0.05", learningRateEdited: true, name: "quick", tags: "baseline" };
    rememberTrainForm(12, used, storage);
    const reopened = withRememberedSettings(12, fresh(), () => true, storage);
    expect(reopened).toEqual({ ...used, name: "" });
    expect(withRememberedSettings(13, fresh(), () => true, storage)).toEqual(fresh()); // another project
  });

  it("keep the fresh dataset when the remembered one is gone, and drop options no longer offered", () => {
    const storage = new MemoryStorage();
    storage.setItem(settingsKey(1), JSON.stringify({ dataset: "99", options: { epochs: "2", removed: "x", batch_size: 5 } }));
    const reopened = withRememberedSettings(1, fresh(), (dataset) => dataset !== "99", storage);
    expect(reopened.dataset).toBe("7");
    expect(reopened.options).toEqual({ epochs: "2", batch_size: "32", shuffle: true });
  });

  it("ignore what is not JSON", () => {
    const storage = new MemoryStorage();
    storage.setItem(settingsKey(1), "{not json");
    expect(withRememberedSettings(1, fresh(), () => true, storage)).toEqual(fresh());
  });
});
