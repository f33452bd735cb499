/**
 * Transparency-log primitives on node:crypto: an RFC 6962 / RFC 9162 Merkle tree (compact range,
 * proofs, verification, a flat-file node store) and C2SP tlog-checkpoint / signed-note with Ed25519.
 */
export {
  type Checkpoint,
  CheckpointError,
  formatCheckpoint,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from './checkpoint.js'
export { CompactRange, type NodeSink } from './compact-range.js'
export { emptyRoot, HASH_SIZE, leafHash, nodeHash } from './hash.js'
export { MerkleTree } from './merkle-tree.js'
export {
  FileNodeStore,
  levelFileName,
  MemoryNodeStore,
  type NodeStore,
  writeFileAtomic,
} from './node-store.js'
export {
  ED25519_TYPE,
  generateNoteKey,
  keyId,
  NoteError,
  type NoteSignature,
  type NoteSigner,
  type NoteVerifier,
  type OpenedNote,
  openNote,
  parseNote,
  parseSignerKey,
  parseVerifierKey,
  signerKeyFromSeed,
  signNote,
  verifierKeyOf,
} from './note.js'
export {
  consistencyProof,
  inclusionProof,
  type NodeReader,
  ProofError,
  rangeHash,
  rootFromInclusionProof,
  verifyConsistency,
  verifyInclusion,
} from './proof.js'
export {
  type AsyncNodeReader,
  asyncNodeReader,
  consistencyProofNodes,
  inclusionProofNodes,
  type NodeKey,
  rootNodes,
  TreeProofs,
} from './proof-nodes.js'
