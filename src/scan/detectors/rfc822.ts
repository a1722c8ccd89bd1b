/**
 * The "Field: value" stanza format shared by dpkg's status file and Python's METADATA/PKG-INFO: a line
 * starting with a space or tab continues the previous field, and a blank line ends a stanza.
 */

/** One stanza; field names are kept as written, and a repeated field keeps every value in order. */
export type Stanza = Map<string, string[]>;

export function first(stanza: Stanza, field: string): string | undefined {
  return stanza.get(field)?.[0];
}

/** Splits a whole file into stanzas (dpkg status). */
export function parseStanzas(text: string): Stanza[] {
  const stanzas: Stanza[] = [];
  let current: Stanza = new Map();
  let last: { field: string; index: number } | undefined;
  for (const line of text.split('\n')) {
    const trimmedEnd = line.replace(/\r$/, '');
    if (trimmedEnd.trim() === '') {
      if (current.size > 0) stanzas.push(current);
      current = new Map();
      last = undefined;
      continue;
    }
    if ((trimmedEnd[0] === ' ' || trimmedEnd[0] === '\t') && last !== undefined) {
      const values = current.get(last.field) as string[];
      values[last.index] += '\n' + trimmedEnd.slice(1);
      continue;
    }
    const colon = trimmedEnd.indexOf(':');
    if (colon <= 0) continue;
    const field = trimmedEnd.slice(0, colon);
    const value = trimmedEnd.slice(colon + 1).trim();
    const values = current.get(field);
    if (values) {
      values.push(value);
      last = { field, index: values.length - 1 };
    } else {
      current.set(field, [value]);
      last = { field, index: 0 };
    }
  }
  if (current.size > 0) stanzas.push(current);
  return stanzas;
}

/** Reads only the header block of a message (Python METADATA: the body after it is the description). */
export function parseHeaderBlock(text: string): Stanza {
  const end = text.search(/\r?\n\r?\n/);
  const [stanza] = parseStanzas(end < 0 ? text : text.slice(0, end));
  return stanza ?? new Map();
}
