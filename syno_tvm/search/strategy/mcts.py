"""Monte Carlo tree search over the synthesis space, after Syno (``experiments/search/mcts/{tree,node,algorithm}.py``),
written anew.

Tree.  Two levels per state: a state node's children are step *kinds* (reduce, merge, ..., contract, and
``finalize`` when the node is itself a valid operator), a kind's children the concrete steps.  Nodes are keyed by
the space's stable node hash, so two paths that reach the same partial operator share one node (a transposition
table: the space is a lattice).

One simulation.  From the root, pick a kind and then a step by UCB1-tuned (virtual loss subtracted), until a node
that has never been visited; from there a random descent (rollout) to a final operator, which is the candidate.
Its reward goes back along the tree path, into the global AMAF table of every step of the trial (GRAVE, tree and
rollout part) and into each tree node's own AMAF table for the steps below it (LRAVE; Syno updates every lattice
path that composes the final, here the trial's own path).

Progressive widening.  A kind node with T = visits + virtual loss shows only max(1, floor(T ** b)) of its steps;
the next one to reveal is the best of ``((1 - beta) * LRAVE + beta * GRAVE) * (1 - noise) + noise * U(0, 1)``
with ``beta = c / (c + n_LRAVE)`` and each AMAF term ``mean + std - 1 / n`` (0 when unseen).

Dead ends.  A rollout that finds no final marks the nodes it exhausted dead; a leaf whose rollouts failed
``rollout_failures`` times is dead; a final that was evaluated (rewards are deterministic) or failed is dead; a
kind with no live step and a node with no live kind are dead, up to the root (then the space is exhausted).

Parallel workers.  Every node, kind and edge on an issued trial's path carries a virtual loss until its result
comes back; UCB subtracts ``virtual_loss * vl`` (Syno's 0.3 per in-flight trial), so one batch spreads out.

Seeds.  Known operators (conv2d, Syno's Operator 1) are located in the space and proposed first, their paths
entered into the tree, so the search starts from the original layer's neighbourhood.

The state (tree statistics, AMAF tables, random generator, known rewards) pickles; synthesis nodes are rebuilt
from each tree node's path on demand.
"""

from __future__ import annotations

import math
import pickle
import random
from dataclasses import dataclass, field
from typing import Any

from ..candidate import OK, Candidate, Result
from ..space import ROLLOUT_RESTARTS as SPACE_ROLLOUT_RESTARTS, Node, Step, arc_key
from .strategy import SearchStrategy, StrategyContext

FINALIZE = "finalize"

# Defaults and where they come from (Syno: experiments/search/mcts/algorithm.py and tree.py).
EXPLORATION_WEIGHT = 4 * math.sqrt(2)   # Syno MCTSAlgorithm.exploration_weight
WIDENING_B = 0.8                        # Syno MCTSAlgorithm passes b = 0.8 (tree default 0.5)
RAVE_C = 3.0                            # Syno reveal_new_children c_l
RAVE_NOISE = 0.3                        # Syno: 30 % uniform noise in the reveal score
VIRTUAL_LOSS = 0.3                      # Syno MCTSAlgorithm.virtual_loss_constant
SUPPRESS_VISITS, SUPPRESS_STD = 30, 1e-3  # Syno _ucd_select: an edge with n > 30 and std <= 0.001 is suppressed
UNVISITED = 1e9                         # Syno: unvisited edges score 1e9 - virtual loss
MAX_ITERATIONS = 3000                   # Syno max_iterations per sample call: simulations per propose()
ROLLOUT_RESTARTS = SPACE_ROLLOUT_RESTARTS  # ours: restarts of one rollout from its leaf (space.py says why)
ROLLOUT_FAILURES = 3                    # ours: failed rollouts after which a leaf is dead (Syno: simulate_fail)
SEEDS = ("conv2d", "syno_operator1")    # Syno seeds MCTS with manual kernels (MCTSAlgorithm.init_kernels)


@dataclass
class Stats:
    """Visit count, reward sum and sum of squares, and in-flight trials (virtual loss)."""

    n: int = 0
    total: float = 0.0
    sq: float = 0.0
    vl: int = 0

    def add(self, r: float) -> None:
        self.n += 1
        self.total += r
        self.sq += r * r

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def var(self) -> float:
        return max(self.sq / self.n - self.mean ** 2, 0.0) if self.n else 0.0

    def amaf(self) -> float:
        """Syno's AMAF score: mean + std - 1/n (0 when unseen)."""
        return self.mean + math.sqrt(self.var) - 1.0 / self.n if self.n else 0.0


@dataclass
class Edge:
    step: Step | None        # None: the finalize edge
    child: str               # key of the child tree node
    stats: Stats = field(default_factory=Stats)


@dataclass
class Kind:
    name: str
    pending: list[Step] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)


@dataclass
class TreeNode:
    key: str
    path: tuple[Step, ...]
    terminal: bool = False   # the "finalize" child: the parent node as an operator
    stats: Stats = field(default_factory=Stats)
    kinds: dict[str, Kind] | None = None
    dead: bool = False
    fails: int = 0
    lrave: dict[str, Stats] = field(default_factory=dict)


@dataclass
class Trial:
    """One issued simulation: the tree path (nodes, kinds, edges) and every step of the final's path."""

    nodes: list[str]
    kinds: list[tuple[str, str]]
    edges: list[tuple[str, str, int]]
    arcs: list[str]
    depth: list[int]         # per tree node: where its part of ``arcs`` starts
    fingerprint: str = ""


class MCTS(SearchStrategy):
    name = "mcts"

    def __init__(self, exploration_weight: float = EXPLORATION_WEIGHT, b: float = WIDENING_B, c: float = RAVE_C,
                 noise: float = RAVE_NOISE, virtual_loss: float = VIRTUAL_LOSS, max_iterations: int = MAX_ITERATIONS,
                 rollout_restarts: int = ROLLOUT_RESTARTS, rollout_failures: int = ROLLOUT_FAILURES,
                 seeds: tuple[str, ...] = SEEDS) -> None:
        self.params = {"exploration_weight": exploration_weight, "b": b, "c": c, "noise": noise,
                       "virtual_loss": virtual_loss, "max_iterations": max_iterations,
                       "rollout_restarts": rollout_restarts, "rollout_failures": rollout_failures,
                       "seeds": list(seeds)}

    def options(self) -> dict[str, Any]:
        return dict(self.params)

    # ---- set-up and state -----------------------------------------------------------------------------------------
    def initialize(self, ctx: StrategyContext) -> None:
        self.space = ctx.space
        self.rng = random.Random(ctx.seed)
        root = ctx.space.root()
        self.root_key = ctx.space.key(root)
        self.tree: dict[str, TreeNode] = {self.root_key: TreeNode(self.root_key, ())}
        self.grave: dict[str, Stats] = {}
        self.rewards: dict[str, float] = {}       # fingerprint -> reward of every told result
        self.inflight: dict[str, list[Trial]] = {}
        self.dead: set[str] = set()               # synthesis nodes proven to have no final below
        self._nodes: dict[str, Node] = {self.root_key: root}
        self.seeds: list[tuple[str, tuple[Step, ...]]] = []
        for name, op in ctx.space.known(self.params["seeds"]):
            path = ctx.space.locate(op)
            if path is not None:
                self.seeds.append((name, path))

    def state(self) -> bytes:
        return pickle.dumps({"rng": self.rng.getstate(), "tree": self.tree, "grave": self.grave,
                             "rewards": self.rewards, "dead": self.dead, "seeds": self.seeds,
                             "inflight": self.inflight})

    def restore(self, state: bytes) -> None:
        s = pickle.loads(state)
        self.rng.setstate(s["rng"])
        self.tree, self.grave, self.rewards = s["tree"], s["grave"], s["rewards"]
        self.dead, self.seeds, self.inflight = s["dead"], s["seeds"], s["inflight"]

    # ---- synthesis nodes ------------------------------------------------------------------------------------------
    def _node(self, t: TreeNode) -> Node:
        """The synthesis node of a tree node, rebuilt from its path when not cached (after a restore)."""
        node = self._nodes.get(t.key)
        if node is None:
            node = self.space.root()
            for step in t.path:
                node = self.space.apply(node, step)
            self._nodes[t.key] = node
        return node

    def _child(self, parent: TreeNode, edge: Edge) -> TreeNode:
        t = self.tree.get(edge.child)
        if t is None:
            if edge.step is None:
                t = TreeNode(edge.child, parent.path, terminal=True)
            else:
                node = self.space.apply(self._node(parent), edge.step)
                t = TreeNode(edge.child, parent.path + (edge.step,))
                self._nodes[edge.child] = node
                t.dead = edge.child in self.dead
            self.tree[edge.child] = t
        return t

    def _expand(self, t: TreeNode) -> None:
        if t.kinds is not None or t.terminal:
            return
        node = self._node(t)
        t.kinds = {}
        if self.space.final(node) is not None:
            t.kinds[FINALIZE] = Kind(FINALIZE, edges=[Edge(None, t.key + "#final")])
        for step, _ in self.space.children(node):
            t.kinds.setdefault(step.kind, Kind(step.kind)).pending.append(step)
        if not t.kinds:
            self._kill(t)

    # ---- selection ------------------------------------------------------------------------------------------------
    def _ucb(self, s: Stats, parent_n: float) -> float:
        p = self.params
        if s.n == 0:
            return UNVISITED - p["virtual_loss"] * s.vl
        if s.n > SUPPRESS_VISITS and math.sqrt(s.var) <= SUPPRESS_STD:
            return -UNVISITED
        log_n = math.log(max(parent_n, 1.0))
        explore = math.sqrt(log_n / s.n * min(0.25, s.var + math.sqrt(2 * log_n / s.n)))
        return s.mean + p["exploration_weight"] * explore - p["virtual_loss"] * s.vl

    def _live_edges(self, kind: Kind) -> list[Edge]:
        return [e for e in kind.edges if not self._edge_dead(e)]

    def _edge_dead(self, e: Edge) -> bool:
        t = self.tree.get(e.child)
        return (t.dead if t is not None else e.child in self.dead)

    def _kind_live(self, kind: Kind) -> bool:
        return bool(kind.pending) or bool(self._live_edges(kind))

    def _widen(self, t: TreeNode, kind: Kind) -> None:
        """Reveal steps until the kind shows max(1, floor(T ** b)) live ones, the next by the RAVE score."""
        p = self.params
        visits = kind.stats.n + kind.stats.vl
        want = max(1, math.floor(visits ** p["b"]))
        while kind.pending and len(self._live_edges(kind)) < want:
            def score(step: Step) -> float:
                key = arc_key(step)
                local = t.lrave.get(key, Stats())
                beta = p["c"] / (p["c"] + local.n)
                rave = (1 - beta) * local.amaf() + beta * self.grave.get(key, Stats()).amaf()
                return rave * (1 - p["noise"]) + p["noise"] * self.rng.random()

            best = max(range(len(kind.pending)), key=lambda i: score(kind.pending[i]))
            step = kind.pending.pop(best)
            child = self.space.key(self.space.apply(self._node(t), step))
            kind.edges.append(Edge(step, child))

    def _select(self, t: TreeNode) -> tuple[Kind, Edge] | None:
        assert t.kinds is not None
        kinds = [k for k in t.kinds.values() if self._kind_live(k)]
        if not kinds:
            self._kill(t)
            return None
        parent_n = t.stats.n + t.stats.vl
        kind = max(kinds, key=lambda k: self._ucb(k.stats, parent_n))
        self._widen(t, kind)
        edges = self._live_edges(kind)
        if not edges:
            return None
        k_n = kind.stats.n + kind.stats.vl
        return kind, max(edges, key=lambda e: self._ucb(e.stats, k_n))

    # ---- dead ends ------------------------------------------------------------------------------------------------
    def _kill(self, t: TreeNode) -> None:
        t.dead = True
        if not t.terminal:
            self.dead.add(t.key)

    def _refresh(self, nodes: list[str]) -> None:
        """Propagate dead ends up the trial's path."""
        for key in reversed(nodes):
            t = self.tree[key]
            if t.dead or t.terminal or t.kinds is None:
                continue
            if not any(self._kind_live(k) for k in t.kinds.values()):
                self._kill(t)

    # ---- rollouts -------------------------------------------------------------------------------------------------
    def _rollout(self, start: TreeNode) -> tuple[tuple[Step, ...], Any] | None:
        """A random descent from ``start`` to a final (the sampler's algorithm, :meth:`SearchSpace.rollout`), seeded
        from this strategy's generator so a restored search rolls out the same way; None after
        ``rollout_restarts`` restarts without a final."""
        return self.space.rollout(start.path, self.rng.getrandbits(62), self.params["rollout_restarts"])

    # ---- one simulation -------------------------------------------------------------------------------------------
    def _simulate(self) -> tuple[Trial, Any] | None:
        """Select down to a leaf, roll out; the trial and its operator, or None (a dead end was found)."""
        t = self.tree[self.root_key]
        nodes, kinds, edges = [t.key], [], []
        while True:
            if t.terminal:
                op = self.space.final(self._node(self.tree[nodes[-2]]))
                path = t.path
                break
            if t.stats.n + t.stats.vl == 0 and t.key != self.root_key:
                rolled = self._rollout(t)
                if rolled is None:
                    t.fails += 1
                    if t.fails >= self.params["rollout_failures"]:
                        self._kill(t)
                    self._refresh(nodes)
                    return None
                tail, op = rolled
                path = t.path + tail
                break
            self._expand(t)
            picked = None if t.dead else self._select(t)
            if picked is None:
                self._refresh(nodes)
                return None
            kind, edge = picked
            kinds.append((t.key, kind.name))
            edges.append((t.key, kind.name, kind.edges.index(edge)))
            t = self._child(t, edge)
            nodes.append(t.key)
        tree_depth = [len(self.tree[k].path) for k in nodes]
        return Trial(nodes, kinds, edges, [arc_key(s) for s in path], tree_depth), (op, path)

    def _stats_on(self, trial: Trial):
        for k in trial.nodes:
            yield self.tree[k].stats
        for k, name in trial.kinds:
            yield self.tree[k].kinds[name].stats
        for k, name, i in trial.edges:
            yield self.tree[k].kinds[name].edges[i].stats

    def _backup(self, trial: Trial, reward: float, inflight: bool) -> None:
        for s in self._stats_on(trial):
            s.add(reward)
            if inflight:
                s.vl -= 1
        for arc in trial.arcs:
            self.grave.setdefault(arc, Stats()).add(reward)
        for k, start in zip(trial.nodes, trial.depth):
            t = self.tree[k]
            for arc in trial.arcs[start:]:
                t.lrave.setdefault(arc, Stats()).add(reward)
        last = self.tree[trial.nodes[-1]]
        if last.terminal:
            self._kill(last)  # rewards are deterministic: an evaluated final has nothing more to tell
        self._refresh(trial.nodes)

    def _issue(self, trial: Trial) -> None:
        for s in self._stats_on(trial):
            s.vl += 1
        self.inflight.setdefault(trial.fingerprint, []).append(trial)

    def _seed_trial(self, path: tuple[Step, ...]) -> Trial | None:
        """Enter a located operator's path into the tree (revealing its steps) and return its trial."""
        t = self.tree[self.root_key]
        nodes, kinds, edges = [t.key], [], []
        for step in list(path) + [None]:
            self._expand(t)
            if t.kinds is None:
                return None
            kind = t.kinds.get(FINALIZE if step is None else step.kind)
            if kind is None:
                return None
            if step is not None and step in kind.pending:
                kind.pending.remove(step)
                kind.edges.append(Edge(step, self.space.key(self.space.apply(self._node(t), step))))
            index = next((i for i, e in enumerate(kind.edges) if e.step == step), None)
            if index is None:
                return None
            kinds.append((t.key, kind.name))
            edges.append((t.key, kind.name, index))
            t = self._child(t, kind.edges[index])
            nodes.append(t.key)
        return Trial(nodes, kinds, edges, [arc_key(s) for s in path], [len(self.tree[k].path) for k in nodes])

    # ---- the strategy interface -----------------------------------------------------------------------------------
    def propose(self, n: int) -> list[Candidate] | None:
        out: list[Candidate] = []
        while self.seeds and len(out) < n:
            name, path = self.seeds.pop(0)
            trial = self._seed_trial(path)
            op = self.space.final(self._node(self.tree[trial.nodes[-2]])) if trial else None
            if trial is not None and op is not None:
                self._offer(trial, op, path, f"seed:{name}", out)
        for _ in range(self.params["max_iterations"]):
            if len(out) >= n or self.tree[self.root_key].dead:
                break
            sim = self._simulate()
            if sim is not None:
                trial, (op, path) = sim
                self._offer(trial, op, path, "mcts", out)
        return out or None

    def _offer(self, trial: Trial, op, path: tuple[Step, ...], source: str, out: list[Candidate]) -> None:
        """A known fingerprint is backed up at once; a new one is issued (virtual loss) and proposed once."""
        fp = self.space.fingerprint(op)
        trial.fingerprint = fp
        if fp in self.rewards:
            self._backup(trial, self.rewards[fp], inflight=False)
            return
        fresh = fp not in self.inflight
        self._issue(trial)
        if fresh:
            out.append(Candidate(op, fp, tuple(str(s) for s in path), source))

    def notify(self, results: list[Result]) -> None:
        for r in results:
            reward = r.reward if r.status == OK else 0.0
            self.rewards[r.fingerprint] = reward
            for trial in self.inflight.pop(r.fingerprint, []):
                self._backup(trial, reward, inflight=True)
