/**
 * Typed Dockerfile instructions (buildkit `frontend/dockerfile/instructions`).
 * Values are as written in the Dockerfile: variables are NOT expanded here;
 * builder/convert expands them with the right ARG/ENV scope.
 */
import type { SourceLocation } from './errors.js';

/** Fields shared by every instruction. */
export interface InstructionBase {
  /** Where the instruction is (first line, keyword column, last line). */
  readonly location: SourceLocation;
  /** The logical source line (continuations joined). */
  readonly original: string;
}

/** `KEY=value` (ENV, LABEL). `noDelim` marks the legacy `ENV KEY value` form. */
export interface KeyValuePair {
  readonly key: string;
  readonly value: string;
  readonly noDelim: boolean;
}

/** `KEY[=default]` (ARG). */
export interface KeyValuePairOptional {
  readonly key: string;
  readonly value?: string;
}

/** A heredoc given to RUN/CMD/ENTRYPOINT (`RUN <<EOF`). `data` is raw; `chomp` is applied by the consumer. */
export interface ShellInlineFile {
  readonly name: string;
  readonly data: string;
  readonly chomp: boolean;
}

/** Command line of RUN/CMD/ENTRYPOINT. */
export interface ShellDependantCmdLine {
  /** Exec form: the JSON elements. Shell form: one element, the joined text. */
  readonly cmdLine: readonly string[];
  readonly files: readonly ShellInlineFile[];
  /** Shell form: run through the stage's SHELL. */
  readonly prependShell: boolean;
}

/** An inline source of ADD/COPY (`COPY <<EOF /dest`); `data` already has `<<-` tabs stripped. */
export interface SourceContent {
  readonly path: string;
  readonly data: string;
  /** Expand variables in `data` (delimiter was unquoted). */
  readonly expand: boolean;
}

/** Sources and destination of ADD/COPY. */
export interface SourcesAndDest {
  readonly destPath: string;
  readonly sourcePaths: readonly string[];
  readonly sourceContents: readonly SourceContent[];
}

export interface EnvInstruction extends InstructionBase {
  readonly kind: 'ENV';
  readonly env: readonly KeyValuePair[];
}
export interface LabelInstruction extends InstructionBase {
  readonly kind: 'LABEL';
  readonly labels: readonly KeyValuePair[];
}
export interface MaintainerInstruction extends InstructionBase {
  readonly kind: 'MAINTAINER';
  readonly maintainer: string;
}
export interface ArgInstruction extends InstructionBase {
  readonly kind: 'ARG';
  readonly args: readonly KeyValuePairOptional[];
}
export interface RunInstruction extends InstructionBase, ShellDependantCmdLine {
  readonly kind: 'RUN';
  /** Raw `--mount` values; parse them with `parseMount` once variables are known. */
  readonly mounts: readonly string[];
  /** Raw `--network` value (default `default`). */
  readonly network: string;
  /** Raw `--security` value (default `sandbox`). */
  readonly security: string;
  /** Names of the flags that were given. */
  readonly flagsUsed: readonly string[];
}
export interface CmdInstruction extends InstructionBase, ShellDependantCmdLine {
  readonly kind: 'CMD';
}
export interface EntrypointInstruction extends InstructionBase, ShellDependantCmdLine {
  readonly kind: 'ENTRYPOINT';
}
/** Docker's HealthcheckConfig; durations in nanoseconds (0 = inherit/default). */
export interface HealthConfig {
  /** `['NONE']`, `['CMD', ...exec]` or `['CMD-SHELL', cmd]`. */
  readonly test: readonly string[];
  readonly interval?: number;
  readonly timeout?: number;
  readonly startPeriod?: number;
  readonly startInterval?: number;
  readonly retries?: number;
}
export interface HealthcheckInstruction extends InstructionBase {
  readonly kind: 'HEALTHCHECK';
  readonly health: HealthConfig;
}
export interface ExposeInstruction extends InstructionBase {
  readonly kind: 'EXPOSE';
  /** Sorted as buildkit sorts them; expanded later. */
  readonly ports: readonly string[];
}
export interface UserInstruction extends InstructionBase {
  readonly kind: 'USER';
  readonly user: string;
}
export interface WorkdirInstruction extends InstructionBase {
  readonly kind: 'WORKDIR';
  readonly path: string;
}
export interface VolumeInstruction extends InstructionBase {
  readonly kind: 'VOLUME';
  readonly volumes: readonly string[];
}
export interface StopSignalInstruction extends InstructionBase {
  readonly kind: 'STOPSIGNAL';
  readonly signal: string;
}
export interface ShellInstruction extends InstructionBase {
  readonly kind: 'SHELL';
  readonly shell: readonly string[];
}
export interface OnbuildInstruction extends InstructionBase {
  readonly kind: 'ONBUILD';
  /** The trigger text as stored in the image config's OnBuild (heredocs appended). */
  readonly expression: string;
}
export interface AddInstruction extends InstructionBase, SourcesAndDest {
  readonly kind: 'ADD';
  readonly chown: string;
  readonly chmod: string;
  readonly link: boolean;
  /** Undefined when the flag was not given. */
  readonly keepGitDir?: boolean;
  readonly checksum: string;
  readonly unpack?: boolean;
  readonly excludes: readonly string[];
}
export interface CopyInstruction extends InstructionBase, SourcesAndDest {
  readonly kind: 'COPY';
  /** Stage name, stage index or image reference; '' for the build context. */
  readonly from: string;
  readonly chown: string;
  readonly chmod: string;
  readonly link: boolean;
  readonly parents: boolean;
  readonly excludes: readonly string[];
}

/** Every instruction that can appear inside a stage. */
export type Instruction =
  | EnvInstruction
  | LabelInstruction
  | MaintainerInstruction
  | ArgInstruction
  | RunInstruction
  | CmdInstruction
  | EntrypointInstruction
  | HealthcheckInstruction
  | ExposeInstruction
  | UserInstruction
  | WorkdirInstruction
  | VolumeInstruction
  | StopSignalInstruction
  | ShellInstruction
  | OnbuildInstruction
  | AddInstruction
  | CopyInstruction;

/** The `FROM` line of a stage. */
export interface FromInstruction extends InstructionBase {
  readonly kind: 'FROM';
  /** Image reference, `scratch`, or another stage's name; may contain global ARG references. */
  readonly baseName: string;
  /** Lower-cased `AS` name, or '' when the stage is unnamed. */
  readonly name: string;
  /** Raw `--platform` value ('' when absent). */
  readonly platform: string;
}

/** A build stage: its FROM and the instructions up to the next FROM. */
export interface Stage {
  readonly from: FromInstruction;
  /** 0-based position in the Dockerfile. */
  readonly index: number;
  readonly instructions: readonly Instruction[];
}

/** Mount types of `RUN --mount`. */
export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
/** Sharing modes of cache mounts. */
export type ShareMode = 'shared' | 'private' | 'locked';

/** A parsed `RUN --mount` (buildkit `instructions.Mount`), with buildkit's defaults applied. */
export interface Mount {
  readonly type: MountType;
  readonly from: string;
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
  /** tmpfs size in bytes (0 = unlimited). */
  readonly sizeLimit: number;
  /** Cache id (cache) or secret/ssh id. */
  readonly cacheId: string;
  /** Cache sharing; '' when not given (the executor defaults to shared). */
  readonly cacheSharing: ShareMode | '';
  readonly required: boolean;
  /** Secret exposed as this environment variable. */
  readonly env?: string;
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
}

/** Network modes of `RUN --network`. */
export type NetworkMode = 'default' | 'none' | 'host';
/** Security modes of `RUN --security`. */
export type SecurityMode = 'sandbox' | 'insecure';

/** Instruction keywords known to the parser, upper case. */
export const INSTRUCTION_NAMES: readonly string[] = [
  'ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL',
  'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR',
];
