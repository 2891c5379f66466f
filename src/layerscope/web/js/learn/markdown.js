// A small, safe markdown renderer for the knowledge base: it builds DOM nodes (text always goes in
// through text nodes, never innerHTML), so HTML written in a document shows as the literal text.
// Supported: ATX headings (#..######, each given an id from `slugify`), paragraphs, **bold**,
// *italic* / _italic_, `code`, fenced code blocks, bullet and numbered lists (wrapped lines and
// one level of nesting), > quotes, pipe tables, horizontal rules and [links](target). Links:
// `other.md`, `other.md#anchor` and `#anchor` become document links (handled by `onLink`);
// http(s) and mailto links open in a new tab; any other scheme (javascript:, data:, …) is shown
// as plain text.

import { el } from "../core/format.js";

/** A heading's anchor, as the server's knowledge base names it (learn/kb.py `anchor_of`):
 * links to their text, emphasis and code marks and a leading list marker dropped, lower case,
 * punctuation dropped, spaces to hyphens (GitHub's rule). */
export function slugify(text) {
  return text.replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/[`*_]{1,3}/g, "")
    .replace(/^\s{0,3}(#{1,6}|>|[-+*]|\d+\.)\s+/, "")
    .trim().toLowerCase()
    .replace(/[^\p{L}\p{N}\- ]/gu, "")
    .replace(/ /g, "-");
}

/** Where a link points: {doc, anchor} inside the knowledge base, {url} outside, or null. */
export function linkTarget(href) {
  const h = href.trim();
  const m = /^(?:\.\/)?([a-z0-9][a-z0-9_-]*)\.md(?:#([^\s]*))?$/i.exec(h);
  if (m) return { doc: m[1], anchor: m[2] ? decodeURIComponent(m[2]) : "" };
  if (h.startsWith("#")) return { doc: null, anchor: decodeURIComponent(h.slice(1)) };
  if (/^(https?:|mailto:)/i.test(h)) return { url: h };
  return null;
}

const BLOCK_START = /^(#{1,6}\s|```|~~~|>\s?|\s*([-*+]|\d+[.)])\s|\|.*\|\s*$|\s*([-*_])(\s*\3){2,}\s*$)/;

/**
 * Render `source` into a DocumentFragment.
 * @param {string} source markdown text
 * @param {{onLink?: (target: {doc: string|null, anchor: string}, a: HTMLAnchorElement) => void}}
 *   opts  `onLink` is attached to every knowledge-base link's click
 * @returns {{fragment: DocumentFragment, headings: {level, text, id}[]}}
 */
export function renderMarkdown(source, opts = {}) {
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  const frag = document.createDocumentFragment();
  const headings = [];
  const used = new Map();
  const inline = (text, parent) => renderInline(text, parent, opts);
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) { i++; continue; }
    let m;
    if ((m = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(line))) {
      const level = m[1].length;
      const h = el(`h${level}`);
      let id = slugify(m[2]);
      const n = used.get(id) ?? 0;
      used.set(id, n + 1);
      if (n) id = `${id}-${n}`;
      h.id = id;
      inline(m[2], h);
      headings.push({ level, text: h.textContent, id });
      frag.append(h);
      i++;
    } else if ((m = /^(```|~~~)\s*([\w+-]*)/.exec(line))) {
      const fence = m[1];
      const body = [];
      i++;
      while (i < lines.length && !lines[i].startsWith(fence)) body.push(lines[i++]);
      i++;
      const pre = el("pre");
      const code = el("code");
      if (m[2]) code.dataset.lang = m[2];
      code.textContent = body.join("\n");
      pre.append(code);
      frag.append(pre);
    } else if (/^\s*([-*_])(\s*\1){2,}\s*$/.test(line)) {
      frag.append(el("hr"));
      i++;
    } else if (/^>\s?/.test(line)) {
      const body = [];
      while (i < lines.length && /^>\s?/.test(lines[i])) body.push(lines[i++].replace(/^>\s?/, ""));
      const q = el("blockquote");
      q.append(renderMarkdown(body.join("\n"), opts).fragment);
      frag.append(q);
    } else if (/^\|.*\|\s*$/.test(line) && /^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/.test(lines[i + 1] ?? "")) {
      const rows = [];
      while (i < lines.length && /^\|.*\|\s*$/.test(lines[i])) rows.push(lines[i++]);
      frag.append(table(rows, inline));
    } else if (/^\s*([-*+]|\d+[.)])\s/.test(line)) {
      const block = [];
      while (i < lines.length && lines[i].trim() &&
             (block.length === 0 || /^\s*([-*+]|\d+[.)])\s/.test(lines[i]) || !BLOCK_START.test(lines[i]))) {
        block.push(lines[i++]);
      }
      // a blank line between items keeps the list going
      while (i + 1 < lines.length && !lines[i].trim() && /^\s*([-*+]|\d+[.)])\s/.test(lines[i + 1])) {
        i++;
        while (i < lines.length && lines[i].trim() &&
               (/^\s*([-*+]|\d+[.)])\s/.test(lines[i]) || !BLOCK_START.test(lines[i]))) {
          block.push(lines[i++]);
        }
      }
      frag.append(list(block, inline));
    } else {
      const body = [];
      while (i < lines.length && lines[i].trim() && (body.length === 0 || !BLOCK_START.test(lines[i]))) {
        body.push(lines[i++].trim());
      }
      const p = el("p");
      inline(body.join(" "), p);
      frag.append(p);
    }
  }
  return { fragment: frag, headings };
}

function cells(row) {
  return row.trim().replace(/^\|/, "").replace(/\|$/, "").split(/(?<!\\)\|/)
    .map((c) => c.trim().replace(/\\\|/g, "|"));
}

function table(rows, inline) {
  const t = el("table");
  const head = el("thead"), body = el("tbody");
  const tr = el("tr");
  for (const c of cells(rows[0])) { const th = el("th"); inline(c, th); tr.append(th); }
  head.append(tr);
  for (const row of rows.slice(2)) {
    const r = el("tr");
    for (const c of cells(row)) { const td = el("td"); inline(c, td); r.append(td); }
    body.append(r);
  }
  t.append(head, body);
  const wrap = el("div", "md-table");
  wrap.append(t);
  return wrap;
}

/** Items of a list block: each item's lines joined; deeper-indented items form a nested list. */
function list(lines, inline) {
  const base = lines[0].match(/^\s*/)[0].length;
  const ordered = /^\s*\d+[.)]\s/.test(lines[0]);
  const root = el(ordered ? "ol" : "ul");
  if (ordered) {
    const start = parseInt(lines[0].trim(), 10);
    if (start !== 1) root.start = start;
  }
  let item = null, text = [], nested = [];
  const flush = () => {
    if (!item) return;
    inline(text.join(" "), item);
    if (nested.length) item.append(list(nested, inline));
    root.append(item);
  };
  for (const line of lines) {
    const indent = line.match(/^\s*/)[0].length;
    const m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(line);
    if (m && indent <= base + 1) {
      flush();
      item = el("li");
      text = [m[2]];
      nested = [];
    } else if (m || nested.length) {
      nested.push(line);
    } else {
      text.push(line.trim());
    }
  }
  flush();
  return root;
}

// inline: code spans first (their content is literal), then links, bold, italic
const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\[([^\]]+)\]\(([^)\s]+)(?:\s+"[^"]*")?\)|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|\*(?!\s)([\s\S]+?)\*|(?<![\w])_(?!\s)([\s\S]+?)_(?![\w])/;

/** Append the inline markdown of `text` to `parent` as DOM nodes. */
export function renderInline(text, parent, opts = {}) {
  let rest = text;
  while (rest) {
    const m = INLINE.exec(rest);
    if (!m) { parent.append(rest.replace(/\\([\\`*_[\]()#|>])/g, "$1")); break; }
    if (m.index) parent.append(rest.slice(0, m.index).replace(/\\([\\`*_[\]()#|>])/g, "$1"));
    if (m[1]) {
      const c = el("code");
      c.textContent = m[2].trim() ? m[2].replace(/^ (.*) $/, "$1") : m[2];
      parent.append(c);
    } else if (m[3] !== undefined) {
      parent.append(link(m[3], m[4], opts));
    } else if (m[5] !== undefined || m[6] !== undefined) {
      const b = el("strong");
      renderInline(m[5] ?? m[6], b, opts);
      parent.append(b);
    } else {
      const e = el("em");
      renderInline(m[7] ?? m[8], e, opts);
      parent.append(e);
    }
    rest = rest.slice(m.index + m[0].length);
  }
}

function link(label, href, opts) {
  const target = linkTarget(href);
  if (!target) {
    const s = el("span");
    renderInline(label, s, opts);
    return s;
  }
  const a = el("a");
  renderInline(label, a, opts);
  if (target.url) {
    a.href = target.url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }
  a.href = `#${target.anchor}`;
  a.dataset.doc = target.doc ?? "";
  a.dataset.anchor = target.anchor;
  a.addEventListener("click", (e) => {
    e.preventDefault();
    opts.onLink?.(target, a);
  });
  return a;
}
