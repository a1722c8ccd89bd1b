/** Paging a name-ordered listing of which the caller may see only some entries (access control). */

/**
 * One page of the listing `list` (name order, after `after`) holding only the entries `visible` accepts: read in
 * batches until `limit` visible entries are found and one more proves the listing goes on (`more`), or it ends.
 */
export async function visiblePage<T>(
  list: (page: { limit: number; last?: string }) => Promise<T[]>,
  nameOf: (item: T) => string,
  limit: number,
  after: string | undefined,
  visible: (name: string) => Promise<boolean>,
): Promise<{ items: T[]; more: boolean }> {
  const batch = 500;
  const items: T[] = [];
  let last = after;
  for (;;) {
    const rows = await list({ limit: batch, last });
    for (const row of rows) {
      if (!(await visible(nameOf(row)))) continue;
      if (items.length === limit) return { items, more: true };
      items.push(row);
    }
    if (rows.length < batch) return { items, more: false };
    last = nameOf(rows[rows.length - 1]);
  }
}
