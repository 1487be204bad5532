"""A plain Keras script on an image folder: `keras.utils.image_dataset_from_directory`
(tf.data, as the Keras guides write it, with prefetch) and `model.fit`.

The reference for bench/data_scale.py. The model is the CNN template as kbuilder fits it
to an image folder (Rescaling 1/255 after the Input). Prints one JSON line: the time at
the end of each epoch and the steps per epoch.
Usage: python bench/plain_image_fit.py BACKEND FOLDER SIZE EPOCHS
"""

import json
import os
import sys
import time

os.environ["KERAS_BACKEND"] = sys.argv[1]
folder, size, epochs = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import layers  # noqa: E402

train = keras.utils.image_dataset_from_directory(
    folder, image_size=(size, size), batch_size=32, validation_split=0.2,
    subset="training", seed=0, verbose=False,
).prefetch(tf.data.AUTOTUNE)
classes = len(os.listdir(folder))
keras.utils.set_random_seed(0)
inputs = keras.Input((size, size, 3))
h = layers.Rescaling(1 / 255)(inputs)
h = layers.Conv2D(32, 3, padding="same", activation="relu")(h)
h = layers.MaxPooling2D(2)(h)
h = layers.Conv2D(64, 3, padding="same", activation="relu")(h)
h = layers.MaxPooling2D(2)(h)
h = layers.Flatten()(h)
h = layers.Dropout(0.3)(h)
outputs = layers.Dense(classes, activation="softmax")(h)
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
times = {"epoch_ends": [], "steps_per_epoch": int(train.cardinality())}


class Clock(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        times["epoch_ends"].append(time.perf_counter())


model.fit(train, epochs=epochs, verbose=0, callbacks=[Clock()])
print(json.dumps(times))
