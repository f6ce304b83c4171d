"""Rasa's graph runner without dask, for the trained model's prediction graph.

Rasa runs its graph (NLU pipeline, policies) through `dask.get` about three times per message.
Our graph is a short chain of nodes run in one thread, so all dask adds is its scheduling: for
each run it rebuilds the task graph, orders it and tracks every task's state, about a tenth of
the Rasa server's time per message (bench/README.md, "Profiling"). This runner runs the same
nodes in the same dependency order, computed once per set of targets, with the same inputs
and the same results. tests/unit/test_graph_runner.py compares it with DaskGraphRunner.
"""
from typing import Any, Dict, List, Optional, Text, Tuple

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner


class SequentialGraphRunner(DaskGraphRunner):
    _orders: Optional[Dict[Tuple[Text, ...], List[Tuple[Text, List[Text]]]]] = None

    def _order(self, targets: Tuple[Text, ...]) -> List[Tuple[Text, List[Text]]]:
        """(node, the nodes whose results it takes, in order) for every node the targets
        need, each after the nodes it needs."""
        if self._orders is None:
            self._orders = {}
        if targets not in self._orders:
            schema = self._graph_schema.minimal_graph_schema(list(targets))
            order: List[Tuple[Text, List[Text]]] = []
            done = set()

            def visit(name: Text, path: Tuple[Text, ...]) -> None:
                if name in done or name not in schema.nodes:   # not a node: an input
                    return
                if name in path:
                    raise GraphRunError(f"The graph has a cycle through '{name}'.")
                needs = list(schema.nodes[name].needs.values())
                for needed in needs:
                    visit(needed, path + (name,))
                done.add(name)
                order.append((name, needs))

            for target in targets:
                visit(target, ())
            self._orders[targets] = order
        return self._orders[targets]

    def run(self, inputs: Optional[Dict[Text, Any]] = None,
            targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
        """Runs the graph (see GraphRunner.run): as DaskGraphRunner.run, without dask."""
        run_targets = tuple(targets if targets else self._graph_schema.target_names)
        order = self._order(run_targets)
        # An input replaces the node of its name, as DaskGraphRunner._add_inputs_to_graph does.
        results: Dict[Text, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in self._graph_schema.nodes:
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure that none of "
                    f"the input names passed to the `run` method are the same as node names "
                    f"in the graph schema.")
            results[name] = (name, value)
        try:
            for name, needs in order:
                if name not in results:
                    results[name] = self._instantiated_nodes[name](*(results[n] for n in needs))
        except RuntimeError as error:   # as DaskGraphRunner.run
            raise GraphRunError("Error running runner.") from error
        return dict(results[target] for target in run_targets)
