/**
 * The in-memory index of traces whose spans were spilled to disk: for each,
 * how many spans are on disk, whether a root span was among them, and the seq
 * of its last spill (where the spill file finds its rows). The due and
 * first-seen times live in the spill file (due times indexed there,
 * `TraceSpillStore.dueBefore`), so the ticker asks the file what is due.
 *
 * An open-addressing hash table over typed arrays: 16 bytes of trace id plus
 * 13 bytes of fields per slot, no object or string per trace, so holding
 * hundreds of thousands of spilled traces costs a few tens of MB at most and
 * adds nothing for the garbage collector to walk.
 */

const EMPTY = 0;
const USED = 1;
const TOMB = 2;
const ROOT = 4;
const BY_ROOT = 8;

const HEXVAL = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEXVAL[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEXVAL[97 + i] = 10 + i;
  HEXVAL[65 + i] = 10 + i;
}
const HEXCHR = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102];

export class SpillIndex {
  private cap: number;
  private mask: number;
  private ids: Uint8Array;
  private seq: Float64Array;
  private spans: Int32Array;
  private flags: Uint8Array;
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
    while (c < initialCapacity) c *= 2;
    this.cap = c;
    this.mask = c - 1;
    this.ids = new Uint8Array(c * 16);
    this.seq = new Float64Array(c);
    this.spans = new Int32Array(c);
    this.flags = new Uint8Array(c);
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
    return this.cap * 29;
  }

  has(id: string): boolean {
    return this.find(id) >= 0;
  }

  /** Loads the entry's fields into last*; false when absent. */
  get(id: string): boolean {
    const s = this.find(id);
    if (s < 0) return false;
    this.load(s);
    return true;
  }

  /** Adds a trace or merges into its entry (spans added, root or-ed, seq replaced when given). */
  add(id: string, spans: number, root: boolean, byRoot = false, seq = 0): void {
    if ((this.used + this.tombs + 1) * 10 > this.cap * 6) this.rehash(this.used * 10 > this.cap * 3 ? this.cap * 2 : this.cap);
    let s = hash(id) & this.mask;
    let tomb = -1;
    for (;;) {
      const f = this.flags[s];
      if (f === EMPTY) break;
      if (f === TOMB) {
        if (tomb < 0) tomb = s;
      } else if (this.same(s, id)) {
        this.spans[s] += spans;
        this.spanSum += spans;
        if (root) this.flags[s] |= ROOT;
        if (byRoot) this.flags[s] |= BY_ROOT;
        if (seq > 0) this.seq[s] = seq;
        return;
      }
      s = (s + 1) & this.mask;
    }
    if (tomb >= 0) {
      s = tomb;
      this.tombs--;
    }
    const o = s * 16;
    for (let i = 0; i < 16; i++) this.ids[o + i] = (HEXVAL[id.charCodeAt(2 * i) & 127] << 4) | HEXVAL[id.charCodeAt(2 * i + 1) & 127];
    this.seq[s] = seq;
    this.spans[s] = spans;
    this.flags[s] = USED | (root ? ROOT : 0) | (byRoot ? BY_ROOT : 0);
    this.used++;
    this.spanSum += spans;
  }

  /** Removes a trace, leaving its fields in last*. False when absent. */
  remove(id: string): boolean {
    const s = this.find(id);
    if (s < 0) return false;
    this.load(s);
    this.flags[s] = TOMB;
    this.used--;
    this.tombs++;
    this.spanSum -= this.spans[s];
    return true;
  }

  clear(): void {
    this.flags.fill(0);
    this.used = 0;
    this.tombs = 0;
    this.spanSum = 0;
  }

  /** Every indexed trace id (hex), for tests and shutdown logs. */
  *keys(): IterableIterator<string> {
    for (let s = 0; s < this.cap; s++) {
      if ((this.flags[s] & 3) !== USED) continue;
      let out = '';
      for (let i = 0; i < 16; i++) {
        const b = this.ids[s * 16 + i];
        out += String.fromCharCode(HEXCHR[b >> 4], HEXCHR[b & 15]);
      }
      yield out;
    }
  }

  private load(s: number): void {
    this.lastSpans = this.spans[s];
    this.lastSeq = this.seq[s];
    this.lastRoot = (this.flags[s] & ROOT) !== 0;
    this.lastByRoot = (this.flags[s] & BY_ROOT) !== 0;
  }

  private find(id: string): number {
    if (this.used === 0) return -1;
    let s = hash(id) & this.mask;
    for (;;) {
      const f = this.flags[s];
      if (f === EMPTY) return -1;
      if ((f & 3) === USED && this.same(s, id)) return s;
      s = (s + 1) & this.mask;
    }
  }

  private same(s: number, id: string): boolean {
    const o = s * 16;
    for (let i = 0; i < 16; i++) {
      const b = this.ids[o + i];
      if (HEXCHR[b >> 4] !== id.charCodeAt(2 * i) || HEXCHR[b & 15] !== id.charCodeAt(2 * i + 1)) return false;
    }
    return true;
  }

  private rehash(newCap: number): void {
    const { ids, seq, spans, flags, cap } = this;
    this.cap = newCap;
    this.mask = newCap - 1;
    this.ids = new Uint8Array(newCap * 16);
    this.seq = new Float64Array(newCap);
    this.spans = new Int32Array(newCap);
    this.flags = new Uint8Array(newCap);
    this.tombs = 0;
    for (let s = 0; s < cap; s++) {
      if ((flags[s] & 3) !== USED) continue;
      let t = hashBytes(ids, s * 16) & this.mask;
      while (this.flags[t] !== EMPTY) t = (t + 1) & this.mask;
      this.ids.set(ids.subarray(s * 16, s * 16 + 16), t * 16);
      this.seq[t] = seq[s];
      this.spans[t] = spans[s];
      this.flags[t] = flags[s];
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
