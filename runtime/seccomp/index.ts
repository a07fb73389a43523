export { DEFAULT_SECCOMP_PROFILE } from './default-profile.js';
export { profileToSpec, parseSeccompProfile, normalizeCap, hostGoArch, type SeccompProfile, type SeccompRule, type SeccompFilter, type ProfileContext } from './profile.js';
