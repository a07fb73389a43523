/** Logging interface injected into library code; library code never uses console. */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
}

/** A logger that drops everything (the default for library calls). */
export const nullLogger: Logger = { debug() {}, info() {}, warn() {} };

/** A logger writing `level: msg` lines to a stream (the CLI uses stderr). */
export function streamLogger(out: NodeJS.WritableStream, level: 'debug' | 'info' | 'warn' = 'info'): Logger {
  const rank = { debug: 0, info: 1, warn: 2 } as const;
  const min = rank[level];
  return {
    debug: (m) => void (min <= 0 && out.write(`debug: ${m}\n`)),
    info: (m) => void (min <= 1 && out.write(`${m}\n`)),
    warn: (m) => void (min <= 2 && out.write(`warning: ${m}\n`)),
  };
}
