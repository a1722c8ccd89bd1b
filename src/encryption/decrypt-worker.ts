/**
 * Worker thread behind src/encryption/parallel.ts: decrypts its lane of a transfer. The plaintext range is cut into
 * segments of whole frames, one slot each; lane k of n takes segments k, k+n, k+2n… For each it reads the segment's
 * stored frames from the file descriptor the main thread opened (one positioned read into a buffer reused for the
 * whole transfer), opens them with the same `decryptStream` the main thread would use (every check included: each
 * frame authenticates its index and the header, the end frame is checked when a segment reaches the last data
 * frame), and copies the plaintext into one of its lane's shared slots, which it posts to the main thread with the
 * segment's number. A slot is reused once the main thread hands it back. Several transfers share the worker, told
 * apart by their id.
 */
import { parentPort } from 'node:worker_threads';
import { noteIngested } from '../memory.ts';
import { BlobCipher, BlobCorruptError, decryptStream, FRAME_OVERHEAD, planRange, type BlobHeader } from './format.ts';
import { readFully } from './read-frames.ts';
import type { FromWorker, ToWorker } from './parallel.ts';

const port = parentPort!;
interface Transfer {
  free: number[];
  waiting: (() => void) | null;
  cancelled: boolean;
}

const transfers = new Map<number, Transfer>();

function post(message: FromWorker): void {
  port.postMessage(message);
}

async function takeSlot(t: Transfer): Promise<number | null> {
  while (t.free.length === 0 && !t.cancelled) await new Promise<void>((resolve) => (t.waiting = resolve));
  return t.cancelled ? null : t.free.shift()!;
}

async function serve(m: Extract<ToWorker, { type: 'serve' }>, t: Transfer): Promise<void> {
  try {
    const cipher = new BlobCipher(Buffer.from(m.dek), m.label);
    const header: BlobHeader = { ...m.header, keyId: Buffer.from(m.header.keyId), raw: Buffer.from(m.header.raw) };
    const { range, segment } = m;
    // A segment's stored bytes: its frames, each with its nonce and tag, and the end frame when it is the last.
    const stored = Buffer.allocUnsafe(segment + (segment / header.frameSize + 1) * FRAME_OVERHEAD);
    const first = Math.floor(range.start / segment);
    const last = Math.floor(range.end / segment);
    for (let j = first + m.lane; j <= last && !t.cancelled; j += m.lanes) {
      const part = { start: Math.max(range.start, j * segment), end: Math.min(range.end, (j + 1) * segment - 1) };
      const plan = planRange(header, part);
      const length = plan.stored.end - plan.stored.start + 1;
      const slot = await takeSlot(t);
      if (slot === null) break;
      const got = await readFully(m.fd, stored.subarray(0, length), plan.stored.start);
      if (got < length) throw new BlobCorruptError(`the stored object of ${m.label} ends at byte ${plan.stored.start + got}, before the frames its header describes`);
      let filled = 0;
      for await (const plain of decryptStream([stored.subarray(0, length)], cipher, header, part)) {
        // Opened frames die young: pace this thread's minor collections by them (src/memory.ts).
        noteIngested(plain.length);
        new Uint8Array(m.slots, slot * m.slotSize + filled, plain.length).set(plain);
        filled += plain.length;
      }
      post({ type: 'chunk', id: m.id, seq: j - first, slot, length: filled });
    }
    post({ type: 'end', id: m.id });
  } catch (err) {
    post({ type: 'end', id: m.id, error: { message: (err as Error).message, corrupt: err instanceof BlobCorruptError } });
  } finally {
    transfers.delete(m.id);
  }
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'serve') {
    const t: Transfer = { free: Array.from({ length: m.slotCount }, (_, i) => m.slotBase + i), waiting: null, cancelled: false };
    transfers.set(m.id, t);
    void serve(m, t);
    return;
  }
  const t = transfers.get(m.id);
  if (!t) return;
  if (m.type === 'release') t.free.push(m.slot);
  else t.cancelled = true;
  const wake = t.waiting;
  t.waiting = null;
  wake?.();
});
