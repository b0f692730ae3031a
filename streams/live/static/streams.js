/* streams: a page's events to POST /events, the shopper's recommendations back (docs/http-api.md) */
(function (w) {
  var c = {}, q = [], t = null;
  function id() {
    return w.crypto && crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function flush() {
    clearTimeout(t); t = null;
    if (!q.length) return Promise.resolve(null);
    return fetch(c.url + "/events", {
      method: "POST", keepalive: true,
      headers: {"Authorization": "Bearer " + c.key, "Content-Type": "application/json"},
      body: JSON.stringify({clicks: q.splice(0, 500)})
    }).then(function (r) { return r.json(); });
  }
  function send(type, fields) {
    var e = {event_id: id(), user_id: c.user, type: type, ts: Date.now()};
    if (c.session) e.session_id = c.session;
    for (var k in fields) if (fields[k] != null) e[k] = fields[k];
    q.push(e);
    if (q.length >= 500) flush(); else if (!t) t = setTimeout(flush, c.delay || 1000);
  }
  w.streams = {
    init: function (o) { c = o; w.addEventListener("pagehide", flush); },
    view: function (item) { send("view", {item_id: item}); },
    addToCart: function (item, quantity) { send("add_to_cart", {item_id: item, quantity: quantity || 1}); },
    impression: function (rec, items, placement) {
      send("impression", {rec_id: rec.rec_id, items: items || rec.items.map(function (i) { return i.item_id; }), placement: placement || c.placement});
    },
    click: function (rec, item, position, placement) {
      send("view", {item_id: item, rec_id: rec.rec_id, position: position, placement: placement || c.placement});
    },
    flush: flush,
    follow: function (show) {
      var u = c.url + "/users/" + encodeURIComponent(c.user) + "/recommendations/stream";
      var s = new EventSource(c.token ? u + "?shopper_token=" + encodeURIComponent(c.token) : u);
      s.addEventListener("recommendation", function (m) { show(JSON.parse(m.data)); });
      return s;
    }
  };
})(window);
