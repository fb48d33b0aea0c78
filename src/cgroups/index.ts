export { Cgroups, type V2Hierarchy } from './cgroups.js';
export { parseMountInfo, type CgroupMount, type V1Mount, type ParsedMountInfo } from './mountinfo.js';
export { cgroupPathFor, normalizeCgroupParent, expandSlice, idChain, v2ProcessPath, V2_LEAF } from './paths.js';
export {
  CgroupError,
  addProcess,
  childCgroups,
  createCgroup,
  freeze,
  freezerKind,
  killAll,
  listProcesses,
  readCgroupFile,
  readCgroupFileOpt,
  removeCgroup,
  thaw,
  writeCgroupFile,
  type FreezerKind,
  type KillOptions,
  type RemoveOptions,
} from './fs.js';
export {
  sharesToWeight,
  cpuMaxValue,
  parseFlatKeyed,
  parseIntValue,
  parseLimit,
  parsePids,
  toNum,
  UNLIMITED_THRESHOLD,
  USER_HZ,
} from './convert.js';
export {
  applyV1DeviceRules,
  applyV2DeviceRules,
  deviceFilterInsns,
  deviceFilterProgram,
  v1RuleText,
  validAccess,
  type DeviceRule,
  type DeviceType,
} from './devices.js';
export {
  cgroupDirsFrom,
  cgroupDirsOfPid,
  parsePsi,
  readCgroupUsage,
  readCpuV1,
  readCpuV2,
  readMemoryV1,
  readMemoryV2,
  readPids,
  readPressure,
  readStatFile,
  type CgroupDirs,
  type CgroupUsage,
  type Psi,
  type PsiData,
} from './stats.js';
