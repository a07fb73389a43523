/** Progress events of a build, for the CLI's renderers (plain, tty, quiet). */
export type ProgressEvent =
  /** A step changed state; `ms` on `done`, the failure's message on `error`. */
  | { readonly kind: 'step'; readonly id: string; readonly name: string; readonly state: 'start' | 'cached' | 'done' | 'error'; readonly ms?: number; readonly error?: string }
  /** Output of a running step, as it arrives. */
  | { readonly kind: 'output'; readonly id: string; readonly name: string; readonly stream: 'stdout' | 'stderr'; readonly chunk: Buffer }
  /** `--debug-cache`: why a step was not found in the cache. */
  | { readonly kind: 'cache-miss'; readonly id: string; readonly name: string; readonly reason: string }
  /** A front-end or build warning. */
  | { readonly kind: 'warning'; readonly message: string };

/** Receives progress events; MUST NOT throw. */
export type ProgressSink = (e: ProgressEvent) => void;
