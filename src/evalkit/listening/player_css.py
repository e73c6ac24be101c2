"""Styles of the player (:mod:`evalkit.listening.player_js`): Streamlit theme variables, a slider row that
scrolls inside the player on narrow screens with the scale fixed at its left."""

PLAYER_CSS = """
.lt { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #222); }
.lt-transport { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; margin-bottom: .6rem; }
.lt button { padding: .45rem .9rem; border-radius: .4rem; border: 1px solid var(--st-border-color, #bbb);
  background: var(--st-secondary-background-color, #f4f4f4); color: inherit; cursor: pointer; font-size: 1rem; }
.lt button.active { background: var(--st-primary-color, #ff4b4b); color: #fff; }
.lt button:disabled { opacity: .45; cursor: not-allowed; }
.lt-bar { position: relative; height: 1.4rem; background: var(--st-secondary-background-color, #eee);
  border-radius: .3rem; cursor: pointer; flex: 1 1 14rem; min-width: 9rem; }
.lt-loop { position: absolute; top: 0; bottom: 0; background: rgba(100, 149, 237, .35); }
.lt-head { position: absolute; top: 0; bottom: 0; width: 2px; background: #333; }
.lt-loopctl { display: flex; gap: .3rem 1rem; align-items: center; font-size: .85rem; margin-bottom: .6rem;
  flex-wrap: wrap; }
.lt-loopctl input { width: min(12rem, 38vw); }
.lt-grid { display: flex; gap: .4rem; align-items: flex-start; overflow-x: auto; padding-bottom: .5rem;
  max-width: 100%; }
.lt-scale { display: flex; flex-direction: column; height: 16rem; margin-top: 1.5rem; font-size: .8rem;
  width: 4.6rem; flex: 0 0 auto; position: sticky; left: 0; z-index: 1;
  background: var(--st-background-color, #fff); }
.lt-scale span { flex: 1; display: flex; align-items: center; justify-content: flex-end; padding-right: .3rem;
  border-top: 1px dashed var(--st-border-color, #ccc); }
.lt-scale span:last-child { border-bottom: 1px dashed var(--st-border-color, #ccc); }
.lt-col { display: flex; flex-direction: column; align-items: center; gap: .3rem; width: 4.2rem; flex: 0 0 auto; }
.lt-col.ref { width: 6.5rem; }
.lt-col input[type=range] { -webkit-appearance: none; appearance: none; writing-mode: vertical-lr; direction: rtl;
  height: 16rem; width: .6rem; margin: 0 .8rem; background: var(--st-secondary-background-color, #e6e6e6);
  border: 1px solid var(--st-border-color, #bbb); border-radius: .3rem; cursor: pointer; }
.lt-col input[type=range]::-webkit-slider-thumb { -webkit-appearance: none; appearance: none; width: 1.6rem;
  height: .9rem; border-radius: .25rem; background: var(--st-primary-color, #ff4b4b); }
.lt-col input[type=range]::-moz-range-thumb { width: 1.6rem; height: .9rem; border-radius: .25rem;
  background: var(--st-primary-color, #ff4b4b); }
.lt-col input[type=range].unset::-webkit-slider-thumb { opacity: 0; }
.lt-col input[type=range].unset::-moz-range-thumb { opacity: 0; }
.lt-col input[type=range]:disabled { opacity: .4; cursor: not-allowed; }
.lt-value { font-variant-numeric: tabular-nums; height: 1.2rem; }
.lt-answer { display: flex; gap: .6rem 1.2rem; margin: .8rem 0; font-size: 1rem; flex-wrap: wrap; }
.lt-status { margin: .6rem 0; font-size: .9rem; min-height: 1.2rem; }
.lt-keys { font-size: .8rem; opacity: .75; margin-bottom: .4rem; }
.lt-scrollhint { font-size: .8rem; opacity: .75; }
.lt-footer { display: flex; gap: .6rem; flex-wrap: wrap; margin-top: .4rem; }
"""
