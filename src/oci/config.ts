import type { Digest } from './digest.js';

/**
 * Image configuration (image-spec config.md), with the Docker-only fields that BuildKit
 * keeps in OCI configs too (Healthcheck, OnBuild, Shell, ArgsEscaped). Field names are the spec's.
 * https://github.com/opencontainers/image-spec/blob/main/config.md
 */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: History[];
  /** Unknown fields are kept on read and written back (Docker writes container, docker_version …). */
  [extra: string]: unknown;
}

/** The `config` member of an image config: the defaults for running the image. */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  ArgsEscaped?: boolean;
  Healthcheck?: HealthConfig;
  OnBuild?: string[] | null;
  Shell?: string[];
  [extra: string]: unknown;
}

/** Docker's HEALTHCHECK config; durations in nanoseconds. */
export interface HealthConfig {
  Test?: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/** One history entry; `empty_layer` marks metadata-only steps. */
export interface History {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}
