/* streams live dashboard: a shop simulator sending events through POST /events, the followed
   shopper's recommendations, profile, cart, segments and triggers, and the worker's figures.
   Served by the worker (streams/live/dashboard.py); docs/http-api.md describes every endpoint. */
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var PAGE = 24, LIST = 10, INTENT_POINTS = 60;
  var s = {user: "", key: null, token: null, source: null, offset: 0, total: 0, updates: 0,
           previous: null, listSeq: 0, intents: [], cart: []};

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function money(p) { return p == null ? "" : p.toFixed(2) + " \u20ac"; }
  function withToken(url) {
    if (!s.token) return url;
    return url + (url.indexOf("?") < 0 ? "?" : "&") + "shopper_token=" + encodeURIComponent(s.token);
  }
  function getJSON(url) {
    return fetch(url).then(function (r) { return r.json().then(function (b) { return {status: r.status, body: b}; }); });
  }
  function uuid() {
    return crypto.randomUUID ? crypto.randomUUID() : Date.now().toString(36) + Math.random().toString(36).slice(2);
  }
  function flash(node) { node.classList.remove("flash"); void node.offsetWidth; node.classList.add("flash"); }
  function fill(list, items, empty) {
    list.replaceChildren.apply(list, items.length ? items : [el("li", "muted", empty)]);
  }
  function prepend(list, item, keep) {
    var placeholder = list.querySelector(".muted");
    if (placeholder && placeholder.parentNode === list) placeholder.remove();
    list.prepend(item);
    while (list.children.length > keep) list.lastChild.remove();
  }

  // -- the shop simulator -----------------------------------------------------------------------

  function loadCatalog() {
    var q = "/items?limit=" + PAGE + "&offset=" + s.offset;
    if ($("category").value) q += "&category=" + encodeURIComponent($("category").value);
    if ($("search").value.trim()) q += "&q=" + encodeURIComponent($("search").value.trim());
    getJSON(q).then(function (r) {
      if (r.status !== 200) return;
      var page = r.body;
      s.total = page.total;
      var select = $("category");
      if (select.options.length === 1) {
        Object.keys(page.categories).forEach(function (c) {
          select.appendChild(el("option", null, c + " (" + page.categories[c] + ")")).value = c;
        });
      }
      $("page-info").textContent = page.total ? (page.offset + 1) + "\u2013" +
        Math.min(page.offset + page.limit, page.total) + " of " + page.total : "no items";
      fill($("grid"), page.items.map(card), "the catalog is empty");
    });
  }

  function card(item) {
    var c = el("div", "card");
    c.dataset.item = item.item_id;
    c.appendChild(el("div", "title", item.title || item.item_id));
    c.appendChild(el("div", "category", (item.category || "") + " \u00b7 " + item.item_id));
    c.appendChild(el("div", "price", money(item.price)));
    if (item.in_stock === false) c.appendChild(el("div", "stock", "out of stock"));
    var add = el("button", "add", "Add to cart");
    add.type = "button";
    add.disabled = !s.key;
    add.addEventListener("click", function (e) {
      e.stopPropagation();
      send("clicks", {type: "add_to_cart", item_id: item.item_id, quantity: 1, price: item.price}, item);
    });
    c.appendChild(add);
    c.addEventListener("click", function () {
      if (!s.key) return;
      c.classList.add("viewed");
      send("clicks", {type: "view", item_id: item.item_id}, item);
    });
    return c;
  }

  function send(topic, fields, item) {
    var event = {event_id: "demo-" + uuid(), user_id: s.user, ts: Date.now()};
    Object.keys(fields).forEach(function (k) { if (fields[k] != null) event[k] = fields[k]; });
    var batch = {};
    batch[topic] = [event];
    var what = (fields.type || fields.status) + " " + (item ? item.title || item.item_id : fields.order_id);
    return fetch("/events", {
      method: "POST",
      headers: {"Authorization": "Bearer " + s.key, "Content-Type": "application/json"},
      body: JSON.stringify(batch)
    }).then(function (r) { return r.json(); }).then(function (answer) {
      var a = (answer[topic] || [])[0] || {status: answer.error || "failed"};
      var line = el("li", a.status === "accepted" ? "accepted" : "refused",
        what + ": " + a.status + (a.code ? " (" + a.code + ")" : ""));
      line.dataset.status = a.status;
      prepend($("sent"), line, 20);
    });
  }

  function checkout() {
    if (!s.cart.length) return;
    var lines = s.cart.map(function (l) {
      var price = l.price != null ? l.price : l.cart_price;
      return price == null ? {item_id: l.item_id, quantity: l.quantity}
                           : {item_id: l.item_id, quantity: l.quantity, price: price};
    });
    var total = lines.reduce(function (t, l) { return t + (l.price || 0) * l.quantity; }, 0);
    send("orders", {order_id: "demo-order-" + uuid().slice(0, 8), status: "placed", items: lines,
                    total: Math.round(total * 100) / 100, currency: "EUR"});
  }

  // -- the followed shopper ---------------------------------------------------------------------

  function follow(user) {
    if (s.source) s.source.close();
    s.user = user; s.key = null; s.token = null; s.previous = null; s.updates = 0; s.intents = [];
    if (!user) return;
    history.replaceState(null, "", "?user=" + encodeURIComponent(user));
    getJSON("/demo/session?user=" + encodeURIComponent(user)).then(function (r) {
      if (r.status === 200) {
        s.key = r.body.write_key; s.token = r.body.shopper_token;
        $("mode").textContent = "Acting as " + user + ": the shop's clicks are this shopper's events.";
      } else {
        $("mode").textContent = "Read-only: " + r.body.error + ". `streams demo` starts a worker with it.";
      }
    }).catch(function () {}).then(function () {
      document.querySelectorAll(".card button").forEach(function (b) { b.disabled = !s.key; });
      connect(user);
      refreshShopper();
    });
  }

  function connect(user) {
    var status = $("status");
    var source = new EventSource(withToken("/users/" + encodeURIComponent(user) + "/recommendations/stream"));
    s.source = source;
    source.onopen = function () { status.textContent = "live"; status.className = "live"; };
    source.onerror = function () { status.textContent = "reconnecting"; status.className = "down"; };
    source.addEventListener("recommendation", function (e) { onRecommendation(JSON.parse(e.data)); });
    source.addEventListener("trigger", function (e) { onTrigger(JSON.parse(e.data)); });
    source.addEventListener("segment", function (e) { onSegment(JSON.parse(e.data)); });
  }

  function onRecommendation(rec) {
    s.updates += 1;
    $("count").textContent = "(update " + s.updates + ")";
    $("cause").textContent = rec.cause_event_id;
    $("model").textContent = rec.model_version;
    $("intent").textContent = rec.purchase_intent.toFixed(2);
    $("latency").textContent = rec.latency_ms;
    s.intents.push(rec.purchase_intent);
    if (s.intents.length > INTENT_POINTS) s.intents.shift();
    chart($("intent-chart"), s.intents, 1);
    var seq = ++s.listSeq;
    var url = "/users/" + encodeURIComponent(s.user) + "/recommendations?n=" + LIST + "&fields=title,price,category";
    getJSON(withToken(url)).then(function (r) {
      if (seq !== s.listSeq) return; // a newer recommendation arrived meanwhile
      showList(r.status === 200 ? r.body.items : rec.items);
    });
    refreshShopper();
  }

  function showList(items) {
    var before = s.previous, ranks = {};
    (before || []).forEach(function (item, i) { ranks[item.item_id] = i; });
    var list = $("recs");
    list.replaceChildren.apply(list, items.map(function (item, i) {
      var li = el("li", "rec");
      li.dataset.item = item.item_id;
      li.appendChild(el("span", "title", item.title || item.item_id));
      if (item.price != null) li.appendChild(el("span", "price", money(item.price)));
      var reason = item.reason || "";
      if (item.because) reason += " " + item.because;
      if (item.category && item.reason === "boosted_category") reason += " " + item.category;
      if (reason) li.appendChild(el("span", "reason", reason));
      if (before) {
        var was = ranks[item.item_id];
        if (was == null) li.appendChild(el("span", "change new", "new"));
        else if (was > i) li.appendChild(el("span", "change up", "\u25b2" + (was - i)));
        else if (was < i) li.appendChild(el("span", "change down", "\u25bc" + (i - was)));
      }
      return li;
    }));
    var now = items.map(function (i) { return i.item_id; });
    var dropped = (before || []).filter(function (item) { return now.indexOf(item.item_id) < 0; });
    $("dropped").textContent = dropped.length ? "dropped since the previous list: " +
      dropped.map(function (item) { return item.title || item.item_id; }).join(", ") : "";
    s.previous = items;
    flash(list);
  }

  function refreshShopper() {
    if (!s.token || !s.user) return;
    getJSON(withToken("/demo/shoppers/" + encodeURIComponent(s.user))).then(function (r) {
      if (r.status !== 200) return;
      var panel = r.body, profile = panel.profile;
      s.cart = panel.cart;
      var total = panel.cart.reduce(function (t, l) { return t + (l.price || l.cart_price || 0) * l.quantity; }, 0);
      fill($("cart"), panel.cart.map(function (l) {
        var li = el("li", "line", l.quantity + " \u00d7 " + (l.title || l.item_id));
        li.dataset.item = l.item_id;
        li.appendChild(el("span", "price", money(l.price != null ? l.price : l.cart_price)));
        return li;
      }), "empty");
      $("cart-total").textContent = panel.cart.length ? money(total) : "";
      $("checkout").disabled = !panel.cart.length || !s.key;
      fill($("activity"), panel.recent.map(function (e) {
        var li = el("li", null, new Date(e.ts).toLocaleTimeString() + " " + e.kind + " " + (e.title || e.item_id || ""));
        li.title = e.event_id;
        return li;
      }), "none yet");
      $("lifecycle").textContent = profile.lifecycle;
      $("orders").textContent = profile.rfm.frequency;
      fill($("interests"), profile.interests.map(function (i) {
        return el("li", null, i.category + " " + Math.round(i.share * 100) + "%");
      }), "no interests yet");
      var chips = $("segments-now");
      chips.replaceChildren.apply(chips, profile.segments.map(function (seg) { return el("span", "chip", seg); }));
    });
  }

  function onSegment(seg) {
    var li = el("li", seg.action, (seg.action === "enter" ? "entered " : "exited ") + seg.segment);
    li.title = seg.reason;
    prepend($("segment-log"), li, 30);
    refreshShopper();
  }

  function onTrigger(t) {
    var items = (t.items || []).map(function (i) { return i.item_id + (i.quantity ? " \u00d7" + i.quantity : ""); });
    var li = el("li", "trigger", t.kind + ": " + t.reason + (items.length ? " \u2014 " + items.join(", ") : "") +
      (t.replay ? " (replay)" : ""));
    prepend($("triggers"), li, 20);
  }

  // -- the system -------------------------------------------------------------------------------

  function chart(svg, values, top) {
    var max = top || Math.max.apply(null, values.concat([1]));
    var n = Math.max(values.length - 1, 1);
    var points = values.map(function (v, i) {
      return (i * 300 / n).toFixed(1) + "," + (58 - 56 * Math.min(v, max) / max).toFixed(1);
    }).join(" ");
    var line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points);
    svg.replaceChildren(line);
  }

  function ms(v) { return v == null ? "-" : v.toFixed(1) + " ms"; }

  function pollSystem() {
    getJSON("/system/summary").then(function (r) {
      var d = r.body;
      $("sys-window").textContent = Math.round(d.window_seconds / 60);
      $("sys-eps").textContent = d.events_per_second == null ? "-" : d.events_per_second.toFixed(1);
      $("sys-p50").textContent = ms(d.p50_ms);
      $("sys-p99").textContent = ms(d.p99_ms);
      $("sys-lag").textContent = d.lag == null ? "-" : d.lag;
      chart($("sys-chart"), d.points.map(function (p) { return p.events_per_second; }));
      var codes = Object.keys(d.dead_letters_total);
      fill($("sys-dead"), codes.map(function (code) {
        return el("li", null, code + ": " + (d.dead_letters[code] || 0) + " in the window, " +
          d.dead_letters_total[code] + " in all");
      }), "none");
    }).catch(function () {});
  }

  // -- wiring -----------------------------------------------------------------------------------

  $("pick").addEventListener("submit", function (e) { e.preventDefault(); follow($("user").value.trim()); });
  $("category").addEventListener("change", function () { s.offset = 0; loadCatalog(); });
  $("search").addEventListener("input", function () { s.offset = 0; loadCatalog(); });
  $("prev").addEventListener("click", function () { s.offset = Math.max(0, s.offset - PAGE); loadCatalog(); });
  $("next").addEventListener("click", function () { if (s.offset + PAGE < s.total) { s.offset += PAGE; loadCatalog(); } });
  $("checkout").addEventListener("click", checkout);
  var user = new URLSearchParams(location.search).get("user") || "demo-shopper";
  $("user").value = user;
  loadCatalog();
  follow(user);
  pollSystem();
  setInterval(pollSystem, 2000);
})();
