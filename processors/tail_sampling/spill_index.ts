/**
 * The in-memory index of traces whose spans were spilled to disk: for each,
 * how many spans are on disk, whether a root span was among them, and the seq
 * of its last spill (where the spill file finds its rows). The due and
 * first-seen times live in the spill file (due times indexed there,
 * `TraceSpillStore.dueBefore`), so the ticker asks the file what is due.
 *
 * Typed arrays only, no object or string per trace, nothing for the garbage
 * collector to walk. Two parts:
 * - entries, dense: 16 bytes of trace id, the seq (Float64) and one Uint32
 *   holding the span count and two flags; 28 bytes each. They grow by 1.5x
 *   and a removed entry goes on a free list threaded through its Uint32.
 * - slots, an open-addressing (linear probing) table of Uint32 entry numbers
 *   (+1; 0 empty, TOMB removed), a power of two kept at most 70 % full:
 *   4 bytes per slot, 4 / 0.35..0.7 ≈ 6-11 bytes per trace.
 * About 37 bytes per trace at 286k traces (10.5 MB), against 29 bytes per
 * slot at 35-60 % load (53 bytes per trace, 15.2 MB) when the fields sat in
 * the hash slots themselves.
 */

const TOMB = 0xffffffff;
const ROOT = 1;
const BY_ROOT = 2;
/** Span counts up to 2^30 - 1 (a trace cannot approach that within a disk budget). */
const SPAN_SHIFT = 2;
const NO_ENTRY = -1;

const HEXVAL = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEXVAL[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEXVAL[97 + i] = 10 + i;
  HEXVAL[65 + i] = 10 + i;
}
const HEXCHR = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102];

export class SpillIndex {
  private slotCap: number;
  private mask: number;
  private slots: Uint32Array;
  private entCap: number;
  private ids: Uint8Array;
  private seq: Float64Array;
  /** span count << SPAN_SHIFT | flags; for a free entry, the next free entry + 1. */
  private word: Uint32Array;
  /** Entries ever handed out (the rest of the arrays is untouched). */
  private entTop = 0;
  private freeHead = NO_ENTRY;
  private used = 0;
  private tombs = 0;
  private spanSum = 0;

  /** Fields of the entry found by the last `remove` / `get`. */
  lastSpans = 0;
  /** Seq of the trace's last spill (0: unknown). */
  lastSeq = 0;
  lastRoot = false;
  /** The trace's due time came from decision_wait_after_root_received. */
  lastByRoot = false;

  constructor(initialCapacity = 1024) {
    let c = 16;
    while (c * 7 < initialCapacity * 10) c *= 2;
    this.slotCap = c;
    this.mask = c - 1;
    this.slots = new Uint32Array(c);
    this.entCap = Math.max(16, initialCapacity);
    this.ids = new Uint8Array(this.entCap * 16);
    this.seq = new Float64Array(this.entCap);
    this.word = new Uint32Array(this.entCap);
  }

  get size(): number {
    return this.used;
  }

  /** Spans on disk over all indexed traces. */
  get spanCount(): number {
    return this.spanSum;
  }

  /** Approximate bytes the index occupies. */
  get memoryBytes(): number {
    return this.slotCap * 4 + this.entCap * 28;
  }

  has(id: string): boolean {
    return this.find(id) >= 0;
  }

  /** Loads the entry's fields into last*; false when absent. */
  get(id: string): boolean {
    const s = this.find(id);
    if (s < 0) return false;
    this.load(this.slots[s] - 1);
    return true;
  }

  /** Adds a trace or merges into its entry (spans added, root or-ed, seq replaced when given). */
  add(id: string, spans: number, root: boolean, byRoot = false, seq = 0): void {
    if ((this.used + this.tombs + 1) * 10 > this.slotCap * 7) this.rehash(this.used * 10 > this.slotCap * 3 ? this.slotCap * 2 : this.slotCap);
    const flags = (root ? ROOT : 0) | (byRoot ? BY_ROOT : 0);
    let s = hash(id) & this.mask;
    let tomb = -1;
    for (;;) {
      const v = this.slots[s];
      if (v === 0) break;
      if (v === TOMB) {
        if (tomb < 0) tomb = s;
      } else if (this.same(v - 1, id)) {
        const e = v - 1;
        this.word[e] = (this.word[e] + (spans << SPAN_SHIFT)) | flags;
        this.spanSum += spans;
        if (seq > 0) this.seq[e] = seq;
        return;
      }
      s = (s + 1) & this.mask;
    }
    if (tomb >= 0) {
      s = tomb;
      this.tombs--;
    }
    const e = this.allocEntry();
    const o = e * 16;
    for (let i = 0; i < 16; i++) this.ids[o + i] = (HEXVAL[id.charCodeAt(2 * i) & 127] << 4) | HEXVAL[id.charCodeAt(2 * i + 1) & 127];
    this.seq[e] = seq;
    this.word[e] = (spans << SPAN_SHIFT) | flags;
    this.slots[s] = e + 1;
    this.used++;
    this.spanSum += spans;
  }

  /** Removes a trace, leaving its fields in last*. False when absent. */
  remove(id: string): boolean {
    const s = this.find(id);
    if (s < 0) return false;
    const e = this.slots[s] - 1;
    this.load(e);
    this.slots[s] = TOMB;
    this.used--;
    this.tombs++;
    this.spanSum -= this.lastSpans;
    this.word[e] = this.freeHead + 1;
    this.freeHead = e;
    return true;
  }

  clear(): void {
    this.slots.fill(0);
    this.entTop = 0;
    this.freeHead = NO_ENTRY;
    this.used = 0;
    this.tombs = 0;
    this.spanSum = 0;
  }

  /** Every indexed trace id (hex), for tests and shutdown logs. */
  *keys(): IterableIterator<string> {
    for (let s = 0; s < this.slotCap; s++) {
      const v = this.slots[s];
      if (v === 0 || v === TOMB) continue;
      const o = (v - 1) * 16;
      let out = '';
      for (let i = 0; i < 16; i++) {
        const b = this.ids[o + i];
        out += String.fromCharCode(HEXCHR[b >> 4], HEXCHR[b & 15]);
      }
      yield out;
    }
  }

  private allocEntry(): number {
    if (this.freeHead !== NO_ENTRY) {
      const e = this.freeHead;
      this.freeHead = this.word[e] - 1;
      return e;
    }
    if (this.entTop === this.entCap) this.growEntries();
    return this.entTop++;
  }

  private growEntries(): void {
    const cap = Math.ceil(this.entCap * 1.5);
    const ids = new Uint8Array(cap * 16);
    ids.set(this.ids);
    const seq = new Float64Array(cap);
    seq.set(this.seq);
    const word = new Uint32Array(cap);
    word.set(this.word);
    this.ids = ids;
    this.seq = seq;
    this.word = word;
    this.entCap = cap;
  }

  private load(e: number): void {
    const w = this.word[e];
    this.lastSpans = w >>> SPAN_SHIFT;
    this.lastSeq = this.seq[e];
    this.lastRoot = (w & ROOT) !== 0;
    this.lastByRoot = (w & BY_ROOT) !== 0;
  }

  /** The slot holding the id's entry, or -1. */
  private find(id: string): number {
    if (this.used === 0) return -1;
    let s = hash(id) & this.mask;
    for (;;) {
      const v = this.slots[s];
      if (v === 0) return -1;
      if (v !== TOMB && this.same(v - 1, id)) return s;
      s = (s + 1) & this.mask;
    }
  }

  private same(e: number, id: string): boolean {
    const o = e * 16;
    for (let i = 0; i < 16; i++) {
      const b = this.ids[o + i];
      if (HEXCHR[b >> 4] !== id.charCodeAt(2 * i) || HEXCHR[b & 15] !== id.charCodeAt(2 * i + 1)) return false;
    }
    return true;
  }

  private rehash(newCap: number): void {
    const old = this.slots;
    this.slotCap = newCap;
    this.mask = newCap - 1;
    this.slots = new Uint32Array(newCap);
    this.tombs = 0;
    for (let s = 0; s < old.length; s++) {
      const v = old[s];
      if (v === 0 || v === TOMB) continue;
      let t = hashBytes(this.ids, (v - 1) * 16) & this.mask;
      while (this.slots[t] !== 0) t = (t + 1) & this.mask;
      this.slots[t] = v;
    }
  }
}

/** FNV-1a over the 16 id bytes (taken from the hex string). */
function hash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i++) {
    const b = (HEXVAL[id.charCodeAt(2 * i) & 127] << 4) | HEXVAL[id.charCodeAt(2 * i + 1) & 127];
    h = Math.imul(h ^ (b & 255), 0x01000193);
  }
  return h >>> 0;
}

function hashBytes(ids: Uint8Array, o: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 16; i++) h = Math.imul(h ^ ids[o + i], 0x01000193);
  return h >>> 0;
}
