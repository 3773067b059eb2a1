// The service map's layout, kept stable while the map refreshes live.
//
// The first drawing is dagre's layered layout (vendored). After that, a node keeps the
// place it was drawn at for as long as it stays on the map: a refresh that brings a new
// node or edge would otherwise be laid out again from scratch, and every node would jump.
// A node that appears is put where dagre's layout of the new graph puts it, relative to a
// neighbour already placed (so it lands next to the node that calls it or that it calls),
// then moved across the ranks to the nearest spot where it overlaps nothing. An edge
// between two nodes that kept their places keeps its route; a new one is drawn straight.
// A node that leaves the map and comes back returns to its old place when that is free.
// Only a change of direction (a narrow window is laid out top to bottom) or reset() lays
// the whole map out again.

import dagre from '../../vendor/dagre.esm.js';

/** The circle's centre, above the node's centre (its labels are below). */
export const HUB_Y = -18;
const REMEMBERED = 2000; // places kept for nodes that left the map
const GAP = 14; // the least room between two nodes' boxes

/** A node's identity across refreshes (GetServiceGraph numbers ReferenceIds per answer). */
export function nodeKey(node) {
  return `${node.Name}\u0000${node.Type || ''}`;
}

function overlaps(a, b) {
  return Math.abs(a.x - b.x) * 2 < a.width + b.width + 2 * GAP
    && Math.abs(a.y - b.y) * 2 < a.height + b.height + 2 * GAP;
}

/**
 * Layout state for one map. place(services, rankdir, measure) lays out GetServiceGraph's
 * Services, measure(node) giving {r, width, height} (the circle's radius and the box the
 * node and its labels take), and returns
 *   {nodes: Map(ReferenceId -> {x, y, r, width, height}),
 *    edges: Map("src>dst" ReferenceIds -> {points: [{x, y}], x, y}) (x, y: its label),
 *    bounds: {x, y, width, height}, fresh: laid out from scratch, added: [ReferenceId]}.
 * Pure computation on the caller's thread; it never touches the page.
 */
export class StableLayout {
  constructor() {
    this.reset();
  }

  /** Forget every place: the next place() lays the map out from scratch. */
  reset() {
    this.places = new Map(); // nodeKey -> {x, y}
    this.shown = new Set(); // the nodeKeys of the last drawing
    this.routes = new Map(); // "srcKey>dstKey" -> {points, x, y}
    this.rankdir = '';
  }

  place(services, rankdir, measure) {
    const fresh = rankdir !== this.rankdir || !this.shown.size;
    if (fresh) this.reset();
    this.rankdir = rankdir;
    const g = new dagre.graphlib.Graph({ multigraph: false });
    const wide = rankdir === 'LR';
    g.setGraph({ rankdir, nodesep: wide ? 28 : 20, ranksep: wide ? 40 : 34, edgesep: 12, marginx: 20, marginy: 20 });
    g.setDefaultEdgeLabel(() => ({}));
    const sizes = new Map();
    const keys = new Map();
    for (const node of services) {
      const size = measure(node);
      sizes.set(node.ReferenceId, size);
      keys.set(node.ReferenceId, nodeKey(node));
      g.setNode(String(node.ReferenceId), { width: size.width, height: size.height });
    }
    const links = [];
    for (const node of services) {
      for (const edge of node.Edges || []) {
        if (!sizes.has(edge.ReferenceId)) continue;
        links.push([node.ReferenceId, edge.ReferenceId]);
        g.setEdge(String(node.ReferenceId), String(edge.ReferenceId), { width: 96, height: 14, labelpos: 'c' });
      }
    }
    dagre.layout(g);
    const laid = (ref) => g.node(String(ref));

    const nodes = new Map();
    const put = (ref, x, y) => nodes.set(ref, { x, y, ...sizes.get(ref) });
    const kept = new Set();
    const shifts = [];
    for (const node of services) {
      const ref = node.ReferenceId;
      const at = fresh ? laid(ref) : this.shown.has(keys.get(ref)) && this.places.get(keys.get(ref));
      if (!at) continue;
      put(ref, at.x, at.y);
      kept.add(ref);
      shifts.push({ x: at.x - laid(ref).x, y: at.y - laid(ref).y });
    }
    const mean = (axis) => (shifts.length ? shifts.reduce((n, p) => n + p[axis], 0) / shifts.length : 0);
    const usual = { x: mean('x'), y: mean('y') };
    const neighbours = new Map(services.map((n) => [n.ReferenceId, []]));
    for (const [a, b] of links) {
      neighbours.get(a).push(b);
      neighbours.get(b).push(a);
    }
    // the others, rank by rank, each next to a neighbour already placed
    const added = services.map((n) => n.ReferenceId).filter((ref) => !kept.has(ref))
      .sort((a, b) => (wide ? laid(a).x - laid(b).x || laid(a).y - laid(b).y : laid(a).y - laid(b).y || laid(a).x - laid(b).x));
    for (const ref of added) {
      let want = this.places.get(keys.get(ref));
      if (!want) {
        const anchor = neighbours.get(ref).find((n) => nodes.has(n));
        const shift = anchor === undefined ? usual : { x: nodes.get(anchor).x - laid(anchor).x, y: nodes.get(anchor).y - laid(anchor).y };
        want = { x: laid(ref).x + shift.x, y: laid(ref).y + shift.y };
      }
      const spot = this.free(want, sizes.get(ref), [...nodes.values()], wide);
      put(ref, spot.x, spot.y);
    }

    const edges = new Map();
    const routes = new Map();
    for (const [a, b] of links) {
      const routeKey = `${keys.get(a)}>${keys.get(b)}`;
      let route = !fresh && kept.has(a) && kept.has(b) ? this.routes.get(routeKey) : null;
      if (!route && fresh) {
        const e = g.edge(String(a), String(b));
        route = { points: e.points.map((p) => ({ x: p.x, y: p.y })), x: e.x, y: e.y };
      }
      if (!route) {
        const from = nodes.get(a);
        const to = nodes.get(b);
        const points = [{ x: from.x, y: from.y + HUB_Y }, { x: to.x, y: to.y + HUB_Y }];
        route = { points, x: (points[0].x + points[1].x) / 2, y: (points[0].y + points[1].y) / 2 };
      }
      edges.set(`${a}>${b}`, route);
      routes.set(routeKey, route);
    }

    this.routes = routes;
    this.shown = new Set();
    for (const [ref, n] of nodes) {
      this.places.set(keys.get(ref), { x: n.x, y: n.y });
      this.shown.add(keys.get(ref));
    }
    if (this.places.size > REMEMBERED) {
      for (const key of [...this.places.keys()]) if (!this.shown.has(key)) this.places.delete(key);
    }
    return { nodes, edges, bounds: bounds(nodes, edges), fresh, added: fresh ? [] : added };
  }

  /** The spot nearest `want`, along the axis across the ranks, where a box of `size` overlaps none of `taken`. */
  free(want, size, taken, wide) {
    const step = 8;
    for (let i = 0; i < 1000; i += 1) {
      const d = Math.ceil(i / 2) * step * (i % 2 ? 1 : -1);
      const spot = wide ? { x: want.x, y: want.y + d } : { x: want.x + d, y: want.y };
      if (!taken.some((t) => overlaps({ ...spot, ...size }, t))) return spot;
    }
    return want;
  }
}

function bounds(nodes, edges) {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  const take = (x, y) => {
    x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
  };
  for (const n of nodes.values()) {
    take(n.x - n.width / 2, n.y - n.height / 2);
    take(n.x + n.width / 2, n.y + n.height / 2);
  }
  for (const e of edges.values()) for (const p of e.points) take(p.x, p.y);
  if (x0 === Infinity) return { x: 0, y: 0, width: 400, height: 300 };
  const margin = 20;
  return { x: x0 - margin, y: y0 - margin, width: x1 - x0 + 2 * margin, height: y1 - y0 + 2 * margin };
}
