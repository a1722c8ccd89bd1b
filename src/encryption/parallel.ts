/**
 * Serving an encrypted blob with its decryption on another core. Pulling a sealed blob costs the AES-GCM of every
 * frame on top of reading the file and writing the socket; done on the main thread, the three run one after the
 * other. Here a worker thread (decrypt-worker.ts) reads the stored frames straight from the file descriptor,
 * decrypts them and copies the plaintext into a few slots of memory shared with this thread, which only writes the
 * slots to the socket and hands each one back once the socket has taken it. Nothing is allocated per chunk on this
 * thread, the slots bound the memory per transfer (4 × 1 MiB), and the socket's pace throttles the worker.
 *
 * The worker starts with the first large encrypted pull (an idle server, or one that only takes pushes, never pays
 * for it) and is shared by every transfer. Same guarantees as decrypting inline: nothing of a frame is sent before
 * it authenticates, a first frame that fails is an error before any header goes out, a later one cuts the transfer.
 */
import { Worker } from 'node:worker_threads';
import type { Writable } from 'node:stream';
import { BlobCorruptError, type BlobCipher, type BlobHeader } from './format.ts';
import type { ByteRange } from '../storage/driver.ts';

export type ToWorker =
  | {
    type: 'serve'; id: number; fd: number; stored: ByteRange; dek: Uint8Array; label: string;
    header: Omit<BlobHeader, 'keyId' | 'raw'> & { keyId: Uint8Array; raw: Uint8Array }; range?: ByteRange;
    slots: SharedArrayBuffer; slotSize: number;
  }
  | { type: 'release'; id: number; slot: number }
  | { type: 'cancel'; id: number };

export type FromWorker =
  | { type: 'chunk'; id: number; slot: number; length: number }
  /** Sent exactly once per transfer; after it the worker no longer reads the file descriptor. */
  | { type: 'end'; id: number; error?: { message: string; corrupt: boolean } };

/** Plaintext slots per transfer: enough to keep the socket and the worker both busy. */
const SLOTS = 4;
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
  onChunk(slot: number, length: number): void;
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
        t.onChunk(m.slot, m.length);
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

let shared: DecryptWorker | null = null;

function worker(): DecryptWorker {
  if (!shared || shared.failed) shared = new DecryptWorker();
  return shared;
}

/**
 * Writes the plaintext of `range` (the whole blob without it) of a sealed version 2 object, open as `fd`, to the
 * destination `open()` returns. `stored`: the stored bytes holding the frames the range needs (planRange). Resolves
 * once the destination has ended; the caller may close `fd` when this settles, either way (the worker is done
 * with it by then).
 */
export function serveDecrypted(fd: number, stored: ByteRange, cipher: BlobCipher, header: BlobHeader, range: ByteRange | undefined, open: () => Writable, signal?: AbortSignal): Promise<void> {
  const w = worker();
  const size = slotSize(header.frameSize);
  const slots = new SharedArrayBuffer(SLOTS * size);
  return new Promise<void>((resolve, reject) => {
    let dest: Writable | null = null;
    let writing = 0;
    let ended = false;
    let gone = false;
    let settled = false;
    let failure: Error | null = null;
    let id = 0;
    const cancel = (err: Error): void => {
      failure ??= err;
      w.post({ type: 'cancel', id });
    };
    const finish = (): void => {
      // Settles once the worker is done with the file (`ended`) and every write is done — or will never report
      // back: a response whose connection is gone drops the callbacks of writes still queued on it.
      if (settled || !ended || (writing > 0 && !gone)) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
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
        // A destination that fails or closes early stops the worker; the transfer settles when it has stopped.
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
    id = w.start({ fd, stored, dek: cipher.dek, label: cipher.label, header: { ...header }, range, slots, slotSize: size }, {
      onChunk(slot, length) {
        if (failure || gone) {
          w.post({ type: 'release', id, slot });
          return;
        }
        let d: Writable;
        try {
          d = destination();
        } catch (err) {
          cancel(err as Error);
          w.post({ type: 'release', id, slot });
          return;
        }
        writing++;
        d.write(Buffer.from(slots, slot * size, length), (err) => {
          writing--;
          if (err) cancel(err);
          // The slot is reused only once the destination is done with its bytes.
          else w.post({ type: 'release', id, slot });
          finish();
        });
      },
      onEnd(error) {
        if (error) failure ??= error;
        ended = true;
        finish();
      },
    });
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
