/** Parsing of the request headers the distribution API gives meaning to. */
import { BerthError } from '../../errors/catalog.ts';

/** `Range: bytes=a-b | bytes=a- | bytes=-n` on blob GET. Undefined when absent or not a single byte range (served whole). */
export function parseRangeHeader(value: string | undefined): { start?: number; end?: number; suffix?: number } | undefined {
  if (!value) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { suffix: Number(m[2]) };
  return { start: Number(m[1]), end: m[2] === '' ? undefined : Number(m[2]) };
}

/** `Content-Range: <start>-<end>` on a chunk (also accepts the RFC form `bytes <start>-<end>/<total|*>`). */
export function parseContentRange(value: string | undefined): { start: number; end: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*(?:bytes[ =])?\s*(\d+)-(\d+)(?:\/(?:\d+|\*))?\s*$/i.exec(value);
  if (!m) throw new BerthError('BLOB_UPLOAD_INVALID', `malformed Content-Range "${value.slice(0, 100)}": expected <start>-<end>`);
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new BerthError('BLOB_UPLOAD_INVALID', `Content-Range ${start}-${end} ends before it starts`);
  return { start, end };
}

export function contentLength(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new BerthError('SIZE_INVALID', `invalid Content-Length "${value.slice(0, 50)}"`);
  return Number(value);
}

/** `n` for paginated lists: a non-negative integer; absent means "as many as the server gives". */
export function parsePageSize(value: string | null, max: number): number {
  if (value === null || value === '') return max;
  if (!/^\d+$/.test(value)) throw new BerthError('PAGINATION_INVALID', `n must be a non-negative integer, got "${value.slice(0, 30)}"`);
  return Math.min(Number(value), max);
}
