/**
 * What an import remembers about every record it has read: whether an id was present in the dump (for pruning), and
 * the digest of the first valid record under it (to spot a second, different record with the same id). An import
 * reads tens of thousands of records and must keep its memory flat, so this is not a Map of strings: measured on
 * osv.dev's Debian export (31,332 records), a Map of id → hex digest plus a Set of ids held ~8 MiB of small strings
 * and hash tables in V8's old generation, and V8 sized that generation as a multiple of what it held, so the
 * process's RSS grew by ~20 MiB from the first to the last quarter of the import.
 *
 * Instead, one open-addressing hash table in typed arrays (outside the garbage-collected heap's object graph, never
 * scanned by the collector): per id, 128 bits of SHA-256(id) as the key and 64 bits of the record's digest, 24 bytes a
 * slot, at most half the slots used — about 1.5 MiB for the Debian export. Two different ids that share their 128-bit
 * key (about n²/2¹²⁹: 10⁻³⁰ for a million ids) or two different records under one id that share 64 bits of digest
 * (2⁻⁶⁴) would be taken for one; neither happens in practice.
 */
import { createHash } from 'node:crypto';

/** Words (uint32) per slot: key[4], digest[2]. */
const STRIDE = 6;
const EMPTY = 0;
/** The id was in the dump, but no valid record with it (yet). */
const PRESENT = 1;
/** The id's first valid record is recorded (its digest words are set). */
const RECORDED = 2;

export class IdLedger {
  private slots: Uint32Array;
  private states: Uint8Array;
  private mask: number;
  private used = 0;
  private recordedCount = 0;
  /** Scratch for the key of the id being looked up. */
  private readonly key = new Uint32Array(4);

  constructor(initialSlots = 4096) {
    let n = 16;
    while (n < initialSlots) n *= 2;
    this.slots = new Uint32Array(n * STRIDE);
    this.states = new Uint8Array(n);
    this.mask = n - 1;
  }

  /** Ids with a recorded digest (the valid records kept). */
  get recorded(): number {
    return this.recordedCount;
  }

  /** Notes that the dump holds `id` (a record that may be invalid). */
  markPresent(id: string): void {
    const slot = this.find(id);
    if (this.states[slot] === EMPTY) this.claim(slot, PRESENT);
  }

  /**
   * Records the first valid record under `id`. Returns `'new'` when the id had none, `'same'` when the earlier one
   * has the same digest, `'different'` when it differs (the earlier one is kept).
   */
  record(id: string, digestHex: string): 'new' | 'same' | 'different' {
    const slot = this.find(id);
    const state = this.states[slot];
    const d0 = parseInt(digestHex.slice(0, 8), 16) >>> 0;
    const d1 = parseInt(digestHex.slice(8, 16), 16) >>> 0;
    const at = slot * STRIDE;
    if (state === RECORDED) return this.slots[at + 4] === d0 && this.slots[at + 5] === d1 ? 'same' : 'different';
    this.slots[at + 4] = d0;
    this.slots[at + 5] = d1;
    this.recordedCount++;
    if (state === PRESENT) this.states[slot] = RECORDED;
    else this.claim(slot, RECORDED);
    return 'new';
  }

  /** Whether the dump held `id`, valid or not. */
  has(id: string): boolean {
    return this.states[this.find(id)] !== EMPTY;
  }

  /** The slot holding `id`'s key, or the empty slot where it would go (linear probing). */
  private find(id: string): number {
    const digest = createHash('sha256').update(id).digest();
    const key = this.key;
    key[0] = digest.readUInt32LE(0);
    key[1] = digest.readUInt32LE(4);
    key[2] = digest.readUInt32LE(8);
    key[3] = digest.readUInt32LE(12);
    return this.probe(key);
  }

  private probe(key: Uint32Array): number {
    let slot = key[0] & this.mask;
    for (;;) {
      if (this.states[slot] === EMPTY) return slot;
      const at = slot * STRIDE;
      if (this.slots[at] === key[0] && this.slots[at + 1] === key[1] && this.slots[at + 2] === key[2] && this.slots[at + 3] === key[3]) return slot;
      slot = (slot + 1) & this.mask;
    }
  }

  /** Fills the empty `slot` (just returned by find) with the current key; grows the table past half full. */
  private claim(slot: number, state: number): void {
    const at = slot * STRIDE;
    this.slots.set(this.key, at);
    this.states[slot] = state;
    this.used++;
    if (this.used * 2 > this.states.length) this.grow();
  }

  private grow(): void {
    const oldSlots = this.slots;
    const oldStates = this.states;
    const n = oldStates.length * 2;
    this.slots = new Uint32Array(n * STRIDE);
    this.states = new Uint8Array(n);
    this.mask = n - 1;
    const key = new Uint32Array(4);
    for (let s = 0; s < oldStates.length; s++) {
      if (oldStates[s] === EMPTY) continue;
      const at = s * STRIDE;
      key.set(oldSlots.subarray(at, at + 4));
      const slot = this.probe(key);
      this.slots.set(oldSlots.subarray(at, at + STRIDE), slot * STRIDE);
      this.states[slot] = oldStates[s];
    }
  }
}
