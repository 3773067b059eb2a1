// Pan and zoom on the service map: drag the background with one pointer (mouse, pen or a
// finger), pinch with two fingers, turn the wheel; the zoom buttons call zoomBy(). Every
// zoom keeps the point under the pointer (or between the fingers, or the centre for a
// button) where it is. The map's SVG has `touch-action: none` (console.css), so the
// browser leaves these gestures to us instead of zooming or scrolling the page.

export const MIN_ZOOM = 0.2;
export const MAX_ZOOM = 4;
const clamp = (k) => Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, k));

/**
 * Attach the gestures to `svg`. get() returns the view {x, y, k} (screen = layout * k +
 * (x, y), in CSS px from the SVG's corner), or null before the first drawing; set(view)
 * shows one. onRelease() is called once no pointer is down on the map any more.
 * Returns {pressed(): whether a pointer is down, zoomBy(factor), stop()}.
 */
export function attachGestures(svg, { get, set, onRelease }) {
  const down = new Map(); // pointerId -> {x, y}, for every pointer down on the map
  let pan = null; // {x, y}: the pointer's offset from the view's corner
  let pinch = null; // {distance, at: layout point between the fingers, k}
  const local = (event) => {
    const box = svg.getBoundingClientRect();
    return { x: event.clientX - box.left, y: event.clientY - box.top };
  };
  const zoomAt = (k, px, py) => {
    const view = get();
    if (!view) return;
    const next = clamp(k);
    set({ k: next, x: px - ((px - view.x) * next) / view.k, y: py - ((py - view.y) * next) / view.k });
  };
  const fingers = () => {
    const [a, b] = [...down.values()];
    return { distance: Math.hypot(a.x - b.x, a.y - b.y) || 1, mid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 } };
  };

  const signal = new AbortController();
  const on = (target, type, handler, options = {}) => target.addEventListener(type, handler, { ...options, signal: signal.signal });
  // capture: counted before a node's own handlers run
  on(svg, 'pointerdown', (event) => { down.set(event.pointerId, local(event)); }, { capture: true });
  on(svg, 'pointerdown', (event) => {
    const view = get();
    if (!view) return;
    if (down.size === 2) {
      pan = null;
      svg.classList.remove('panning');
      const { distance, mid } = fingers();
      pinch = { distance, k: view.k, at: { x: (mid.x - view.x) / view.k, y: (mid.y - view.y) / view.k } };
      return;
    }
    if (down.size !== 1 || event.target.closest('.node, .edge')) return;
    const at = local(event);
    pan = { x: at.x - view.x, y: at.y - view.y };
    svg.classList.add('panning');
    svg.setPointerCapture(event.pointerId);
  });
  on(svg, 'pointermove', (event) => {
    if (!down.has(event.pointerId)) return;
    down.set(event.pointerId, local(event));
    const view = get();
    if (!view) return;
    if (pinch && down.size >= 2) {
      const { distance, mid } = fingers();
      const k = clamp(pinch.k * (distance / pinch.distance));
      set({ k, x: mid.x - pinch.at.x * k, y: mid.y - pinch.at.y * k });
    } else if (pan) {
      const at = local(event);
      set({ k: view.k, x: at.x - pan.x, y: at.y - pan.y });
    }
  });
  const lift = (event) => {
    if (!down.delete(event.pointerId)) return;
    if (down.size < 2) pinch = null;
    if (!down.size) {
      pan = null;
      svg.classList.remove('panning');
      onRelease();
    }
  };
  // on the window: a pointer may be lifted outside the map
  on(window, 'pointerup', lift);
  on(window, 'pointercancel', lift);
  on(svg, 'wheel', (event) => {
    const view = get();
    if (!view) return;
    event.preventDefault();
    const at = local(event);
    zoomAt(view.k * Math.exp(-event.deltaY * 0.0015), at.x, at.y);
  }, { passive: false });

  return {
    pressed: () => down.size > 0,
    zoomBy: (factor) => {
      const view = get();
      const box = svg.getBoundingClientRect();
      if (view) zoomAt(view.k * factor, box.width / 2, box.height / 2);
    },
    stop: () => signal.abort(),
  };
}
