import * as core from '@actions/core'
import { State } from '../common/constants.js'
import { run } from './main.js'
import { runPost } from './post.js'

// The runner runs this bundle twice: as `main`, then as `post`, which sees the main step's state.
await (core.getState(State.IsPost) ? runPost() : run())
