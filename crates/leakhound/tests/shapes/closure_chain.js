'use strict';
// Shape 1, a chain of closure contexts (the "replaceThing" shape): `render` and `check`
// share one scope; `check` captures the previous renderer, so each new renderer's
// `render` closure keeps the scope, which keeps the renderer before it.
// FIXED=1: the twin drops the link once it is used.
const { listen } = require('../apps/common');

const FIXED = process.env.FIXED === '1';
let current = null;
let made = 0;

function rebuildRenderer(url) {
  let previous = current;
  const check = function () {
    return previous ? 'had one' : 'first';
  };
  current = {
    template: 'page ' + url + ' '.repeat(512) + made++,
    render: function () {
      return this.template;
    },
  };
  const said = check();
  if (FIXED) previous = null;
  return said;
}

listen((req, res) => {
  rebuildRenderer(req.url);
  res.end(current.render().slice(0, 10));
}, 'closure-chain');
