// JSON text positions for the editor: where a JSON Pointer's value sits in the text, and
// where a syntax error is (line and column).
//
// JSON.parse gives values without positions, so a small scanner walks the text itself and
// remembers the offsets of the value at the pointer. It follows RFC 8259 closely enough to
// find the first syntax error; values are not built.

// parsePointer("/a/b~1c/0") → ["a", "b/c", "0"]; "" is the whole document.
export function parsePointer(ptr) {
  if (ptr === '' || ptr === undefined || ptr === null) return [];
  const p = String(ptr);
  if (p[0] !== '/') return null;
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

class Scan {
  constructor(text, target) {
    this.t = text;
    this.i = 0;
    this.target = target;
    this.found = null; // {start, end} of the target value
    this.best = { depth: -1, start: 0, end: text.length }; // deepest ancestor seen
  }

  fail(msg) {
    const e = new Error(msg);
    e.offset = this.i;
    throw e;
  }

  ws() {
    const t = this.t;
    while (this.i < t.length && (t[this.i] === ' ' || t[this.i] === '\n' || t[this.i] === '\r' || t[this.i] === '\t')) this.i++;
  }

  // path: the segments so far; matching: true while path is a prefix of the target.
  value(path, matching) {
    this.ws();
    const start = this.i;
    const c = this.t[this.i];
    if (c === '{') this.object(path, matching);
    else if (c === '[') this.array(path, matching);
    else if (c === '"') this.string();
    else if (c === '-' || (c >= '0' && c <= '9')) this.number();
    else if (this.t.startsWith('true', this.i)) this.i += 4;
    else if (this.t.startsWith('false', this.i)) this.i += 5;
    else if (this.t.startsWith('null', this.i)) this.i += 4;
    else this.fail(c === undefined ? 'unexpected end of the text' : `unexpected character ${JSON.stringify(c)}`);
    if (matching && this.target) {
      if (path.length === this.target.length) this.found = { start, end: this.i };
      else if (path.length > this.best.depth) this.best = { depth: path.length, start, end: this.i };
    }
  }

  object(path, matching) {
    this.i++;
    this.ws();
    if (this.t[this.i] === '}') {
      this.i++;
      return;
    }
    for (;;) {
      this.ws();
      if (this.t[this.i] !== '"') this.fail('expected a property name in double quotes');
      const ks = this.i;
      this.string();
      const key = JSON.parse(this.t.slice(ks, this.i));
      this.ws();
      if (this.t[this.i] !== ':') this.fail('expected ":" after a property name');
      this.i++;
      const sub = matching && this.target && path.length < this.target.length && this.target[path.length] === key;
      this.value(path.concat([key]), sub);
      this.ws();
      const c = this.t[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === '}') {
        this.i++;
        return;
      }
      this.fail('expected "," or "}" after a property value');
    }
  }

  array(path, matching) {
    this.i++;
    this.ws();
    if (this.t[this.i] === ']') {
      this.i++;
      return;
    }
    for (let n = 0; ; n++) {
      const sub = matching && this.target && path.length < this.target.length && this.target[path.length] === String(n);
      this.value(path.concat([String(n)]), sub);
      this.ws();
      const c = this.t[this.i];
      if (c === ',') {
        this.i++;
        continue;
      }
      if (c === ']') {
        this.i++;
        return;
      }
      this.fail('expected "," or "]" after an array element');
    }
  }

  string() {
    const t = this.t;
    this.i++;
    while (this.i < t.length) {
      const c = t[this.i];
      if (c === '"') {
        this.i++;
        return;
      }
      if (c === '\\') {
        const e = t[this.i + 1];
        if (e === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(t.slice(this.i + 2, this.i + 6))) this.fail('bad \\u escape');
          this.i += 6;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) {
          this.i += 2;
        } else {
          this.fail('bad escape in a string');
        }
        continue;
      }
      if (c < ' ') this.fail('control character in a string (write it as an escape)');
      this.i++;
    }
    this.fail('unterminated string');
  }

  number() {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(this.t.slice(this.i, this.i + 400));
    if (!m || m[0] === '' || m[0] === '-') this.fail('bad number');
    this.i += m[0].length;
  }

  document() {
    this.value([], true);
    this.ws();
    if (this.i < this.t.length) this.fail('unexpected text after the JSON value');
  }
}

// lineCol(text, offset) → {line, column}, both 1-based.
export function lineCol(text, offset) {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, column: offset - last };
}

// checkJson(text) → {ok: true, value} or {ok: false, message, offset, line, column}: the
// message is JSON.parse's own, the position the scanner's (browsers word and place their
// messages differently; the scanner's offset is the same everywhere).
export function checkJson(text) {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    let offset = text.length;
    try {
      new Scan(text, null).document();
    } catch (scanErr) {
      if (typeof scanErr.offset === 'number') offset = scanErr.offset;
    }
    const { line, column } = lineCol(text, offset);
    return { ok: false, message: err.message, offset, line, column };
  }
}

// locate(text, pointer) → {start, end, exact}: the offsets of the pointer's value in text.
// When the value is absent (a "required" property is missing, say) it is the deepest
// ancestor that exists, with exact false. null when the text does not parse.
export function locate(text, pointer) {
  const target = parsePointer(pointer);
  if (target === null) return null;
  const s = new Scan(text, target);
  try {
    s.document();
  } catch (_) {
    return null;
  }
  if (s.found) return { ...s.found, exact: true };
  return { start: s.best.start, end: s.best.end, exact: false };
}
