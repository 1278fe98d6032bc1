// Live samples from the run page's WebSocket (`run.layer_stats`) to the Layers view.
import type { LayerSample } from "./stats";

export class LayerStatsFeed {
  private listeners = new Set<(samples: LayerSample[]) => void>();

  push(samples: LayerSample[]): void {
    for (const listener of this.listeners) listener(samples);
  }

  subscribe(listener: (samples: LayerSample[]) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
