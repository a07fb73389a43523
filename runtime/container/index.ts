export { createContainer, execInContainer, loadContainer, loadStoredState, listContainers, runContainer, type Container, type ExecProcess, type ContainerIO, type CreateOptions, type LoadOptions } from './container.js';
export { type ContainerState, type ContainerStatus, type StoredState } from './state.js';
