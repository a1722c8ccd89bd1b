/**
 * Serving an encrypted blob with its decryption on other cores. Pulling a sealed blob costs the AES-GCM of every
 * frame on top of reading the file and writing the socket; done on the main thread, the three run one after the
 * other. Here worker threads (decrypt-worker.ts) read the stored frames straight from the file descriptor, decrypt
 * them and copy the plaintext into slots of memory shared with this thread, which only writes the slots to the socket,
 * in order, and hands each one back once the socket has taken it. The range is cut into segments of whole frames (one
 * slot each) dealt out to the lanes in turn — lane k of n takes segments k, k+n, … — so with two workers the AES work
 * of one transfer runs on two cores (on machines with the cores to spare, see lanesAllowed). Nothing is allocated per chunk on this thread, the slots bound the memory per
 * transfer (4 × 1 MiB), and the socket's pace throttles the workers.
 *
 * The workers start with the first large encrypted pull (an idle server, or one that only takes pushes, never pays
 * for them) and are shared by every transfer. Same guarantees as decrypting inline: nothing of a frame is sent before
 * it authenticates, a segment that fails before the first one is written is an error before any header goes out, a
 * later one cuts the transfer.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Writable } from 'node:stream';
import { BlobCorruptError, type BlobCipher, type BlobHeader } from './format.ts';
import type { ByteRange } from '../storage/driver.ts';

export type ToWorker =
  | {
    type: 'serve'; id: number; fd: number; dek: Uint8Array; label: string;
    header: Omit<BlobHeader, 'keyId' | 'raw'> & { keyId: Uint8Array; raw: Uint8Array };
    /** The plaintext range of the whole transfer (inclusive). */
    range: ByteRange;
    /** Plaintext bytes per segment: whole frames, one slot's worth. Segment j starts at j · segment. */
    segment: number;
    /** This worker's lane: it takes the range's segments lane, lane + lanes, … */
    lane: number; lanes: number;
    /** Slots are `slotSize` bytes; this lane owns slots slotBase … slotBase + slotCount − 1. */
    slots: SharedArrayBuffer; slotSize: number; slotBase: number; slotCount: number;
  }
  | { type: 'release'; id: number; slot: number }
  | { type: 'cancel'; id: number };

export type FromWorker =
  /** The plaintext of segment `seq` (counted from the range's first segment) is in `slot`. */
  | { type: 'chunk'; id: number; seq: number; slot: number; length: number }
  /** Sent exactly once per transfer; after it the worker no longer reads the file descriptor. */
  | { type: 'end'; id: number; error?: { message: string; corrupt: boolean } };

/** Plaintext slots per transfer: enough to keep the socket and the workers busy (at least two per lane). */
const SLOTS = 4;
/**
 * Decryption lanes (one worker each): two on machines with four CPUs or more, where the AES work of a transfer can
 * have cores of its own; one on smaller ones. On the 2-vCPU machine this was built on, two lanes measured the same as
 * one (7-round A/B runs of bench/pull-path.ts: 1.21× slower in one, 1.05× faster in the next) — the client and the
 * main thread's socket writes need the other core — and cost a second worker's heap (about 20 MiB while pulls run).
 * Two lanes on bigger machines are not measured here. A transfer of a single segment uses one lane.
 */
let lanesAllowed = availableParallelism() >= 4 ? 2 : 1;

/** How many lanes transfers may use from now on (tests exercise two lanes on any machine). */
export function setDecryptLanes(lanes: 1 | 2): void {
  lanesAllowed = lanes;
}
/**
 * Bytes a slot holds: whole frames (a slot boundary never splits one), as many as fit in 1 MiB, at least one. Each
 * slot is one message each way between the threads and one socket write: four 256 KiB frames per slot instead of one
 * took about a quarter off the main thread's CPU per large pull (bench/pull-path.ts).
 */
const SLOT_BYTES = 1024 * 1024;

/** The slot size for frames of `frameSize` bytes: as many whole frames as fit in SLOT_BYTES, at least one. */
export function slotSize(frameSize: number): number {
  return Math.max(1, Math.floor(SLOT_BYTES / frameSize)) * frameSize;
}

interface Transfer {
  onChunk(seq: number, slot: number, length: number): void;
  onEnd(error?: Error): void;
}

class DecryptWorker {
  private readonly worker: Worker;
  private readonly transfers = new Map<number, Transfer>();
  private nextId = 1;
  failed = false;

  constructor() {
    if (import.meta.url.endsWith('.ts')) {
      // Run from source (tests, tsx): the worker registers tsx itself, as loader hooks do not reach workers.
      const entry = new URL('./decrypt-worker.ts', import.meta.url).href;
      const tsx = import.meta.resolve('tsx/esm/api');
      this.worker = new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`, { eval: true });
    } else {
      this.worker = new Worker(new URL('./decrypt-worker.js', import.meta.url));
    }
    this.worker.on('message', (m: FromWorker) => {
      const t = this.transfers.get(m.id);
      if (!t) return;
      if (m.type === 'chunk') {
        t.onChunk(m.seq, m.slot, m.length);
      } else {
        this.transfers.delete(m.id);
        if (this.transfers.size === 0) this.worker.unref();
        t.onEnd(m.error ? (m.error.corrupt ? new BlobCorruptError(m.error.message) : new Error(m.error.message)) : undefined);
      }
    });
    const fail = (err: Error): void => {
      this.failed = true;
      const pending = [...this.transfers.values()];
      this.transfers.clear();
      for (const t of pending) t.onEnd(new Error(`the decryption worker stopped: ${err.message}`));
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`it exited with code ${code}`)));
    // Keeps the process alive only while transfers run: an idle worker does not hold up a server that shuts down.
    // (After the listeners: adding a 'message' listener refs the worker's port again.)
    this.worker.unref();
  }

  start(message: Omit<Extract<ToWorker, { type: 'serve' }>, 'id' | 'type'>, transfer: Transfer): number {
    const id = this.nextId++;
    if (this.transfers.size === 0) this.worker.ref();
    this.transfers.set(id, transfer);
    this.worker.postMessage({ ...message, type: 'serve', id } satisfies ToWorker);
    return id;
  }

  post(message: ToWorker): void {
    if (!this.failed) this.worker.postMessage(message);
  }
}

const pool: Array<DecryptWorker | null> = [];

function worker(lane: number): DecryptWorker {
  let w = pool[lane];
  if (!w || w.failed) {
    w = new DecryptWorker();
    pool[lane] = w;
  }
  return w;
}

/**
 * Writes the plaintext of `range` (the whole blob without it) of a sealed version 2 object, open as `fd`, to the
 * destination `open()` returns. Resolves once the destination has ended; the caller may close `fd` when this
 * settles, either way (the workers are done with it by then).
 */
export function serveDecrypted(fd: number, cipher: BlobCipher, header: BlobHeader, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<void> {
  const want = range ?? { start: 0, end: header.plaintextSize - 1 };
  const segment = slotSize(header.frameSize);
  const segments = Math.floor(want.end / segment) - Math.floor(want.start / segment) + 1;
  const lanes = Math.min(lanesAllowed, segments);
  const perLane = Math.max(2, Math.floor(SLOTS / lanes));
  const slots = new SharedArrayBuffer(lanes * perLane * segment);
  return new Promise<void>((resolve, reject) => {
    let dest: Writable | null = null;
    let writing = 0;
    let ended = 0;
    let gone = false;
    let settled = false;
    let failure: Error | null = null;
    const ids: number[] = [];
    const workers: DecryptWorker[] = [];
    /** Segments decrypted but not yet written, by number; `next` is the one the socket needs now. */
    const ready = new Map<number, { lane: number; slot: number; length: number }>();
    let next = 0;
    const release = (lane: number, slot: number): void => workers[lane].post({ type: 'release', id: ids[lane], slot });
    const cancel = (err: Error): void => {
      failure ??= err;
      for (let lane = 0; lane < workers.length; lane++) workers[lane].post({ type: 'cancel', id: ids[lane] });
    };
    const finish = (): void => {
      // Settles once every lane is done with the file and every write is done — or will never report back: a
      // response whose connection is gone drops the callbacks of writes still queued on it.
      if (settled || ended < lanes || (writing > 0 && !gone)) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (!failure && next !== segments) failure = new Error(`the decryption workers delivered ${next} of ${segments} segments`);
      if (failure) {
        dest?.destroy(failure);
        reject(failure);
        return;
      }
      try {
        destination().end(() => resolve());
      } catch (err) {
        reject(err);
      }
    };
    const onAbort = (): void => cancel(signal?.reason instanceof Error ? signal.reason : new Error('the client went away'));
    const destination = (): Writable => {
      if (!dest) {
        const d = open();
        dest = d;
        // A destination that fails or closes early stops the workers; the transfer settles when they have stopped.
        const lost = (err: Error): void => {
          gone = true;
          cancel(err);
          finish();
        };
        d.once('error', lost);
        d.once('close', () => { if (!d.writableFinished) lost(new Error('the client went away')); });
      }
      return dest;
    };
    /** Writes the segments that are next in order; each slot goes back to its lane once the socket took it. */
    const flush = (): void => {
      for (let r = ready.get(next); r; r = ready.get(next)) {
        ready.delete(next);
        next++;
        const { lane, slot, length } = r;
        if (failure || gone) {
          release(lane, slot);
          continue;
        }
        let d: Writable;
        try {
          d = destination();
        } catch (err) {
          cancel(err as Error);
          release(lane, slot);
          continue;
        }
        writing++;
        d.write(Buffer.from(slots, slot * segment, length), (err) => {
          writing--;
          if (err) cancel(err);
          // The slot is reused only once the destination is done with its bytes.
          else release(lane, slot);
          finish();
        });
      }
    };
    const message = { fd, dek: cipher.dek, label: cipher.label, header: { ...header }, range: want, segment, lanes, slots, slotSize: segment, slotCount: perLane };
    for (let lane = 0; lane < lanes; lane++) {
      const w = worker(lane);
      workers.push(w);
      ids.push(w.start({ ...message, lane, slotBase: lane * perLane }, {
        onChunk(seq, slot, length) {
          if (failure || gone) {
            release(lane, slot);
            return;
          }
          ready.set(seq, { lane, slot, length });
          flush();
        },
        onEnd(error) {
          if (error) cancel(error);
          ended++;
          finish();
        },
      }));
    }
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
