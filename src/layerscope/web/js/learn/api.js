// The Learn side's REST reads (GET /api/glossary, /api/docs, /api/docs/{slug}, /api/tours), each
// fetched once per page and shared by the glossary, the tooltips, the docs panel and the tours.

const cache = new Map();

/** GET `path` as JSON, once per page (a failure is not cached: the next call tries again). */
export function getJSON(path) {
  if (!cache.has(path)) {
    const p = fetch(path, { headers: { Accept: "application/json" } }).then(async (r) => {
      if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text().catch(() => "")}`.trim());
      return r.json();
    });
    p.catch(() => cache.delete(path));
    cache.set(path, p);
  }
  return cache.get(path);
}

/** The glossary: {terms: [...], byId: Map(id -> term)}. */
export async function glossary() {
  const g = await getJSON("/api/glossary");
  const terms = Array.isArray(g) ? g : g.terms;
  if (!g.byId) Object.defineProperty(g, "byId", { value: new Map(terms.map((t) => [t.id, t])) });
  return { terms, byId: g.byId };
}

/** The documents: [{slug, title}], in the server's order. */
export async function docList() {
  const d = await getJSON("/api/docs");
  return Array.isArray(d) ? d : d.docs;
}

/** One document: {slug, title, markdown, headings}. */
export const doc = (slug) => getJSON(`/api/docs/${encodeURIComponent(slug)}`);

/** The guided tours: [{id, title, summary, views, steps}]. */
export async function tours() {
  const t = await getJSON("/api/tours");
  return Array.isArray(t) ? t : t.tours;
}
