# SPDX-License-Identifier: Apache-2.0
"""A Tune search over a scikit-learn model with ASHA: an SGD classifier trained one
epoch per iteration (partial_fit) on the digits data set; ASHA stops the configs that
lag.  Then the best config is scored by 5-fold cross validation with scikit-learn's
n_jobs=-1 on kray (the joblib backend)."""
import joblib
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import cross_val_score, train_test_split

import kray as ray
from kray import tune
from kray.util.joblib import register_ray


def train_digits(config):
    X, y = load_digits(return_X_y=True)
    X_train, X_val, y_train, y_val = train_test_split(X / 16.0, y, test_size=0.25,
                                                      random_state=0)
    clf = SGDClassifier(loss=config["loss"], alpha=config["alpha"], eta0=config["eta0"],
                        learning_rate="constant", random_state=0)
    for _ in range(20):
        clf.partial_fit(X_train, y_train, classes=np.arange(10))
        tune.report(mean_accuracy=clf.score(X_val, y_val))


ray.init()
analysis = tune.run(
    train_digits,
    config={"loss": tune.choice(["hinge", "log_loss", "modified_huber"]),
            "alpha": tune.loguniform(1e-6, 1e-1), "eta0": tune.loguniform(1e-4, 1.0)},
    num_samples=12, metric="mean_accuracy", mode="max", verbose=1,
    scheduler=tune.ASHAScheduler(max_t=20, grace_period=2, reduction_factor=3),
    search_alg=tune.search.BasicVariantGenerator(random_state=0))
best = analysis.best_config
stopped = sum(1 for t in analysis.trials if t.last_result["training_iteration"] < 20)
print(f"best config {best}: accuracy {analysis.best_result['mean_accuracy']:.3f}; "
      f"ASHA stopped {stopped} of {len(analysis.trials)} trials early")

register_ray()
X, y = load_digits(return_X_y=True)
with joblib.parallel_backend("ray"):
    scores = cross_val_score(SGDClassifier(learning_rate="constant", random_state=0,
                                           max_iter=20, tol=None, **best),
                             X / 16.0, y, cv=5, n_jobs=-1)
print(f"5-fold cross validation on kray: {scores.mean():.3f}")
