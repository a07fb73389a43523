export { FrameDecoder, MAX_MESSAGE, SETUP_STEPS, encodeMessage, parseHelperMessage, type ConfigMessage, type HelperMessage, type SetupStep, type ToHelper } from './protocol.js';
export { HelperProcess, defaultHelperPath, spawnHelper, type HelperExit, type SpawnHelperOptions, type StdioSlot } from './spawn.js';
