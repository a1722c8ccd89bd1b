/**
 * Marks the moment a page has its data on screen (`performance.mark('berth:ready:<page>')`): the time to interactive
 * measured from navigation start, which the browser tests read.
 */
export function markReady(page: string): void {
  performance.mark(`berth:ready:${page}`);
}
