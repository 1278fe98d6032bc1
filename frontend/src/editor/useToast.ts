// A short message over the canvas that goes away by itself.
import { useEffect, useState } from "react";

const TOAST_MS = 4000;

export function useToast(): [string | null, (message: string | null) => void] {
  const [toast, setToast] = useState<string | null>(null);
  useEffect(() => {
    if (!toast) return;
    const timer = window.setTimeout(() => setToast(null), TOAST_MS);
    return () => window.clearTimeout(timer);
  }, [toast]);
  return [toast, setToast];
}
