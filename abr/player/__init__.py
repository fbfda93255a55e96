"""The real web player: abr's policies in dash.js 5, in chromium, over a trace-shaped local server.

* :mod:`abr.player.content`: DASH content made with ffmpeg, and its chunk-size table for the simulator;
* ``abr/player/web``: the plug-in (plain JS): the dash.js rule, the observation encoder, the policy network
  from the export's JSON weights (or ONNX Runtime Web), BBA/RobustMPC/FastMPC, and the player page;
* :mod:`abr.player.shaping` and :mod:`abr.player.server`: one shared link shaped to a trace, in real time
  (time-scalable), serving the content, the page and the policy files on 127.0.0.1;
* :mod:`abr.player.browser`: one session end to end in chromium (Playwright), written like ``abr evaluate``;
* :mod:`abr.player.session_log`: the page's log checked and turned into the simulator's chunk records;
* :mod:`abr.player.fidelity`: the same sessions in the simulator and the real player, and their gaps. (The Node
  tests' rule vectors are test code: ``tests/abr/player/rule_vectors.py``.)

See ``docs/player.md``. Needs the ``player`` extra (aiohttp, Playwright), ffmpeg, Debian's chromium and the
npm packages of ``package.json``; nothing here is imported by ``import abr``.
"""
