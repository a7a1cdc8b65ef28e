"""Segmentation in the browser (issue 29): the offline web folder ``export --target web`` writes
(:mod:`deeplab_keras.web.app`), the MediaPipe Tasks for Web runtime vendored into it from npm
(:mod:`deeplab_keras.web.runtime`) and the loopback static server of ``deeplab-keras serve``
(:mod:`deeplab_keras.web.server`). See docs/web.md."""
